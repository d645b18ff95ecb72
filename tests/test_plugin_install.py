"""Installing the plugin from a clone copies the pack, not the clone's development environment.

Claude Code copies a marketplace entry's folder whole into
``~/.claude/plugins/cache``: it leaves out ``.git`` and nothing else (no
``.gitignore``, no ignore file). With the entry at ``./`` a clone after
``make test`` took ``.venv/``, ``tools/node_modules/`` (the pinned CLI alone is
~380 MB) and ``demo-out/`` along. The entry therefore installs ``plugin/``,
which links to the pack's folders; the copy turns links that stay inside the
marketplace into real files.

These tests do what a user does, with the real CLI, offline, under a throwaway
HOME: add a clone as a marketplace and install from it, both from the folder
(``marketplace add ./clone``) and through git (the way ``/plugin marketplace
add owner/repo`` fetches), then look at what landed in the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from conftest import ROOT, require_tool, run_cli
from test_harness import claude_env, copy_shipped

PLUGIN_ID = "dispatch-kit@dispatch-kit"
LIMIT = 3_000_000  # bytes the installed copy may take after `make test`
# What `make test` and `make demo` leave at a clone's root, large enough that an
# install copying any of it breaks the limit (sparse files: cheap to make).
DEBRIS = {
    ".venv/lib/python3.11/site-packages/yaml/_yaml.cpython-311-x86_64-linux-gnu.so": 4_000_000,
    "tools/node_modules/@anthropic-ai/claude-code/bin/claude.exe": 4_000_000,
    "demo-out/workspace/.dispatch/ledger.jsonl": 4_000_000,
    ".pytest_cache/v/cache/nodeids": 10_000,
    "build/lib/dispatch_kit/__init__.py": 10_000,
}
# Plugin folders Claude Code reads; whichever the checkout has, the install must carry.
COMPONENTS = ("skills", "agents", "hooks", "bin", "workflows", "commands", "monitors",
              "output-styles", "themes")


def offline_env(home: Path) -> dict[str, str]:
    env = claude_env(home)
    env.update(CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1")
    return env


def claude(*args: str, home: Path, cwd: Path) -> str:
    command = [require_tool("claude"), *args]
    proc = subprocess.run(command, cwd=cwd, env=offline_env(home), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def make_clone(clone: Path) -> Path:
    """The checkout as a clone looks after ``make test``.

    What git carries (links kept), the ignored files inside the folders the
    plugin installs as this checkout has them (bytecode, egg-info: they do
    travel), and a development environment at the root.
    """
    copy_shipped(clone)
    for link in (ROOT / "plugin").iterdir():
        if link.is_symlink() and link.is_dir():
            folder = link.resolve()
            shutil.copytree(folder, clone / folder.relative_to(ROOT), symlinks=True,
                            dirs_exist_ok=True)
    for name, size in DEBRIS.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        with open(clone / name, "wb") as handle:
            handle.truncate(size)
    return clone


def apparent_size(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*") if not path.is_dir())


def install_path(home: Path, cwd: Path) -> Path:
    """Where the CLI cached the plugin, from its own listing."""
    listing = json.loads(claude("plugin", "list", "--json", home=home, cwd=cwd))
    (entry,) = [item for item in listing if item["id"] == PLUGIN_ID]
    return Path(entry["installPath"])


def provides(manifest: Path, home: Path) -> dict[str, list]:
    """What ``claude plugin validate`` finds in the plugin that holds ``manifest``."""
    report = json.loads(claude("plugin", "validate", "--json", str(manifest), home=home,
                               cwd=manifest.parent))
    assert report["success"] is True, report
    return report["provides"]


@dataclass
class Install:
    clone: Path
    home: Path
    cache: Path  # the installed copy


@pytest.fixture(scope="module")
def from_folder(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """``claude plugin marketplace add ./clone``, then install: the case that copied it all."""
    require_tool("claude")
    base = tmp_path_factory.mktemp("install-folder")
    clone, home = make_clone(base / "clone"), base / "home"
    home.mkdir()
    claude("plugin", "marketplace", "add", "./clone", home=home, cwd=base)
    claude("plugin", "install", PLUGIN_ID, home=home, cwd=base)
    return Install(clone, home, install_path(home, base))


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A smart-HTTP git server on 127.0.0.1 (``git http-backend``) and the folder it serves."""
    git = require_tool("git")
    served = tmp_path_factory.mktemp("git-served")

    def app(environ, start_response):
        env = {key: value for key, value in environ.items() if isinstance(value, str)}
        env.update(GIT_PROJECT_ROOT=str(served), GIT_HTTP_EXPORT_ALL="1")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        out = subprocess.run([git, "http-backend"], input=body, env=env, capture_output=True,
                             timeout=120).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = value
            elif key:
                headers.append((key, value))
        start_response(status, headers)
        return [payload]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def from_git(tmp_path_factory: pytest.TempPathFactory, git_server: tuple[str, Path]) -> Install:
    """``claude plugin marketplace add URL``: the CLI clones, as it does for owner/repo."""
    require_tool("claude")
    url, served = git_server
    base = tmp_path_factory.mktemp("install-git")
    clone, home = make_clone(base / "clone"), base / "home"
    home.mkdir()
    git = ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@invalid"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "the pack"]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=60)
    subprocess.run(["git", "clone", "-q", "--bare", str(clone), str(served / "pack.git")],
                   check=True, capture_output=True, timeout=60)
    claude("plugin", "marketplace", "add", f"{url}/pack.git", home=home, cwd=base)
    claude("plugin", "install", PLUGIN_ID, home=home, cwd=base)
    return Install(clone, home, install_path(home, base))


@pytest.fixture(params=["from_folder", "from_git"])
def install(request: pytest.FixtureRequest) -> Install:
    return request.getfixturevalue(request.param)


def test_an_install_from_a_clone_copies_the_pack_not_the_environment(install: Install) -> None:
    assert apparent_size(install.clone) > 3 * LIMIT  # the clone does carry an environment
    size = apparent_size(install.cache)
    largest = sorted(install.cache.rglob("*"), key=lambda p: p.lstat().st_size)[-5:]
    assert size < LIMIT, f"installed copy is {size} bytes; largest: {largest}"
    for debris in (".venv", "tools", "demo-out", "build", ".pytest_cache", "tests", "bench"):
        assert not (install.cache / debris).exists(), f"{debris}/ was installed"
    print(f"clone {apparent_size(install.clone)} bytes, installed copy {size} bytes")


def test_the_installed_copy_holds_the_packs_components_as_real_files(install: Install) -> None:
    cache = install.cache
    assert not [path for path in cache.rglob("*") if path.is_symlink()]
    for folder in COMPONENTS:
        if not (ROOT / folder).is_dir():
            continue
        assert (cache / folder).is_dir(), (
            f"{folder}/ is not installed; link it: ln -s ../{folder} plugin/{folder}"
        )
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT)
                installed = cache / rel
                if rel.as_posix() == "hooks/hooks.json":  # a derived copy: same JSON
                    assert json.loads(installed.read_text()) == json.loads(path.read_text())
                else:
                    assert installed.read_bytes() == path.read_bytes(), f"{rel} differs"
    assert os.access(cache / "bin" / "dispatch-kit", os.X_OK)
    assert sorted(p.name for p in (cache / ".claude-plugin").iterdir()) == [
        "icon.png", "marketplace.json", "plugin.json"
    ]


def test_claude_finds_in_the_install_what_it_finds_in_the_checkout(
    install: Install, tmp_path: Path
) -> None:
    checkout = provides(ROOT / ".claude-plugin" / "plugin.json", tmp_path)
    assert provides(install.cache / ".claude-plugin" / "plugin.json", tmp_path) == checkout
    assert checkout["skills"] and checkout["agents"] and checkout["hooks"] and checkout["bin"]
    assert checkout["monitors"]  # monitors/monitors.json, through the plugin/monitors link


def test_the_installed_copy_runs_the_demo_with_its_own_code(
    from_folder: Install, tmp_path: Path
) -> None:
    """The demo checks the manifests, renders the templates and runs the bundled example."""
    env = dict(os.environ, PYTHONPATH=str(from_folder.cache / "scripts"),
               PYTHONDONTWRITEBYTECODE="1")
    result = run_cli("demo", "--out", str(tmp_path / "demo"), cwd=tmp_path, env=env,
                     timeout=300)
    assert result.returncode == 0, result.output
    probe = subprocess.run(
        [sys.executable, "-c", "import dispatch_kit; print(dispatch_kit.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert Path(probe.stdout.strip()).is_relative_to(from_folder.cache)
