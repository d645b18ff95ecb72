"""A built wheel is whole: every subcommand works installed, run from a folder outside the pack.

A checkout hides what a wheel leaves out: the package finds templates,
agents and the example beside ``scripts/``. These tests build the sdist and,
from it, the wheel (once per session), install the wheel into a fresh venv
and with ``pip install --user`` under a throwaway HOME, and drive the
installed ``dispatch-kit`` from an empty folder with no PYTHONPATH, as a user
who ran ``pip install`` would. Building from the sdist proves it carries the
pack too.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, Result, cli_env, run_cli, run_command

PACK = "dispatch_kit/pack"
# Folders of a working checkout that are no part of the source (and can be large).
NOT_SOURCE = {
    ".git", ".venv", "venv", "node_modules", "build", "dist", "demo-out", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".dispatch", "out",
}
# Variables a developer's shell or the suite sets that would let the installed
# command see the checkout, or another install, instead of its own files.
LEAKY = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONNOUSERSITE", "VIRTUAL_ENV",
         "DISPATCH_KIT_ROOT", "PYTHONSAFEPATH")
PIP_QUIET = ["--disable-pip-version-check", "--no-input", "--quiet"]
EDIT_AND_COMMIT = "Edit config/payments.yaml to raise max_retries to 5, then commit and push it.\n"


@dataclass
class Install:
    """One installation of the wheel: its ``dispatch-kit`` and the environment to run it in."""

    name: str
    command: Path
    env: dict[str, str]

    def __call__(self, *args: str, cwd: Path, input: str | None = None) -> Result:
        return run_command([str(self.command), *args], input=input, cwd=cwd, env=self.env)


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in LEAKY}
    env.update(extra)
    return env


def step(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run one build or install command; a failure shows its whole output."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}{proc.stderr}"


def ignore_non_source(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_SOURCE or n.endswith((".egg-info", ".pyc"))}


def require_setuptools() -> None:
    """The build runs without isolation (fast, no download): this python needs setuptools 77+."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("setuptools")
    except PackageNotFoundError:
        found = "none"
    major = found.split(".")[0]
    if major.isdigit() and int(major) >= 77:
        return
    message = f"building the wheel needs setuptools>=77 (found {found}); `make setup` installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist, built from a copy of the checkout, and the wheel built from that sdist."""
    require_setuptools()
    base = tmp_path_factory.mktemp("wheel-build")
    source, dist = base / "source", base / "dist"
    # A copy: building in place would leave build/ and egg-info in the checkout.
    shutil.copytree(ROOT, source, ignore=ignore_non_source, symlinks=True)
    step(
        [sys.executable, "-c",
         f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"],
        cwd=source,
    )
    (sdist,) = dist.glob("*.tar.gz")
    step([sys.executable, "-m", "pip", "wheel", *PIP_QUIET, "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(dist), str(sdist)], cwd=base)
    (wheel,) = dist.glob("*.whl")
    return Built(sdist, wheel)


@pytest.fixture(scope="session")
def venv_install(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The wheel in a fresh venv (dependencies from the pip cache or the index)."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    # Without pip the venv takes a tenth of a second; this python's pip installs into it.
    step([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    step([sys.executable, "-m", "pip", "--python", str(python), "install", *PIP_QUIET,
          "--no-warn-script-location", str(built.wheel)], env=clean_env())
    return Install("venv", venv / "bin" / "dispatch-kit", clean_env())


@pytest.fixture(scope="session")
def user_install(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The wheel installed with ``pip install --user`` by the base python, under a throwaway HOME.

    The data lands in ``$HOME/.local`` here, not under ``sys.prefix``: the case
    that lost the templates when they were installed as data files.
    """
    home = tmp_path_factory.mktemp("wheel-home")
    user_base = home / ".local"
    env = clean_env(HOME=str(home), PYTHONUSERBASE=str(user_base))
    python = getattr(sys, "_base_executable", sys.executable)
    # --break-system-packages: a distribution's python refuses --user installs
    # otherwise (PEP 668); this one goes to a folder the test throws away.
    step([sys.executable, "-m", "pip", "--python", python, "install", "--user",
          "--break-system-packages", *PIP_QUIET, "--no-warn-script-location", str(built.wheel)],
         env=env)
    return Install("user", user_base / "bin" / "dispatch-kit", env)


@pytest.fixture(params=["venv", "user"])
def installed(request: pytest.FixtureRequest) -> Install:
    return request.getfixturevalue(f"{request.param}_install")


def expected_pack_files() -> set[str]:
    """The checkout's files a wheel must carry under dispatch_kit/pack/ (setup.py's list)."""
    files = {"plugin.json", ".claude-plugin/plugin.json", ".claude-plugin/marketplace.json"}
    files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.j2")}
    files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "agents").glob("*.md")}
    files |= {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "examples").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    return files


# --------------------------------------------------------------------------- contents


def test_the_wheel_carries_the_pack_as_package_data(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
    pack = {name[len(PACK) + 1 :] for name in names if name.startswith(PACK + "/")}
    assert pack == expected_pack_files()
    assert "agents/domain-editor.md" in pack and "examples/wordcount/worker.py" in pack
    assert "dispatch_kit/schemas/plan.schema.json" in names
    # Nothing installed beside the package, where an install scheme decides the place.
    assert not [name for name in names if ".data/" in name]


def test_the_sdist_carries_what_the_build_copies(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {name[len(top) + 1 :] for name in sdist.getnames()}
    assert expected_pack_files() <= names
    assert {"setup.py", "MANIFEST.in", "pyproject.toml"} <= names


# --------------------------------------------------------------------------- behaviour


def example_mission(folder: Path) -> Path:
    """A copy of the example plan, its workspace and its scripted worker; returns the plan."""
    example = ROOT / "examples" / "wordcount"
    shutil.copy2(example / "plan.yaml", folder / "plan.yaml")
    shutil.copy2(example / "worker.py", folder / "worker.py")
    shutil.copytree(example / "workspace", folder / "workspace")
    return folder / "plan.yaml"


def hook_event(prompt: str, cwd: Path, subagent: str) -> str:
    return json.dumps({
        "session_id": "2f0c9c1e-6a53-4a0b-9b0e-0d6f3c1e9a11",
        "cwd": str(cwd),
        "hook_event_name": "PreToolUse",
        "tool_name": "Agent",
        "tool_input": {"description": "Raise the retry limit", "prompt": prompt,
                       "subagent_type": subagent},
    })


def test_demo_runs_the_bundled_example(installed: Install, tmp_path: Path) -> None:
    result = installed("demo", "--out", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "demo: all 7 steps passed" in result.stdout
    # The pack is the package data, named because it is not the current folder.
    assert f"manifests --check --root {os.sep}" in result.stdout
    assert PACK in result.stdout
    assert "manifests: in sync with plugin.json" in result.stdout
    assert "verified counter (attempt 1/4)" in result.output
    assert (tmp_path / "demo" / "workspace" / "src" / "wordcount.py").is_file()


def test_the_hook_finds_the_packs_agents(installed: Install, tmp_path: Path) -> None:
    """DK401 needs domain-editor's tools, read from the pack's agents/ in the package data."""
    result = installed("hook", "pre-dispatch", cwd=tmp_path,
                       input=hook_event(EDIT_AND_COMMIT, tmp_path, "domain-editor"))
    assert result.returncode == 2, result.output
    assert "DK401 agent 'domain-editor' has no Bash" in result.stderr
    assert "dispatch-kit blocked this dispatch" in result.stderr


def test_render_plan_check_and_lint(installed: Install, tmp_path: Path) -> None:
    plan = example_mission(tmp_path)
    assert installed("plan", "validate", "plan.yaml", cwd=tmp_path).returncode == 0

    worker = installed("render", "worker", "--plan", "plan.yaml", "--task", "counter",
                       "-o", "worker.md", cwd=tmp_path)
    assert worker.returncode == 0, worker.output
    assert (tmp_path / "worker.md").read_text().startswith("[Execute] Task `counter`")
    shutil.copy2(ROOT / "examples" / "vars" / "executor.yaml", tmp_path / "executor.yaml")
    executor = installed("render", "executor", "--vars", "executor.yaml", cwd=tmp_path)
    assert executor.returncode == 0, executor.output
    assert "Stream-safety" in executor.stdout  # the shared clause came from the package too
    unknown = installed("render", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "known templates: composite-chain, composite-load, executor" in unknown.stderr

    check = installed("check", str(plan), cwd=tmp_path)
    assert check.returncode == 1, check.output  # no worker ran yet: nothing can pass

    lint = installed("lint", "worker.md", cwd=tmp_path)
    assert (lint.returncode, lint.stdout) == (0, ""), lint.output
    (tmp_path / "bare.md").write_text("[Execute] Fix the parser.\n")
    bare = installed("lint", "bare.md", cwd=tmp_path)
    assert bare.returncode == 1 and "DK101" in bare.stdout
    rule = installed("rule", "DK401", cwd=tmp_path)
    assert rule.returncode == 0 and "bash-task-for-bashless-agent" in rule.stdout


def test_run_and_ledger(installed: Install, tmp_path: Path) -> None:
    example_mission(tmp_path)
    worker = f"{shlex.quote(sys.executable)} \"$DISPATCH_KIT_ORIGIN\"/worker.py --mode pass"
    run = installed("run", "plan.yaml", "--worker", worker, cwd=tmp_path)
    assert run.returncode == 0, run.output
    status = installed("ledger", "status", "--db", "workspace/.dispatch/ledger.db",
                       "--format", "json", cwd=tmp_path)
    assert status.returncode == 0, status.output
    states = {task["id"]: task["state"] for task in json.loads(status.stdout)["tasks"]}
    assert set(states.values()) == {"verified"}, states


def test_manifests_works_on_the_folder_it_is_given(installed: Install, tmp_path: Path) -> None:
    version = installed("--version", cwd=tmp_path)
    source_version = json.loads((ROOT / "plugin.json").read_text())["version"]
    assert version.stdout.strip() == f"dispatch-kit {source_version}"

    not_a_pack = installed("manifests", "--check", cwd=tmp_path)
    assert not_a_pack.returncode == 2
    assert not_a_pack.stderr == (
        f"{tmp_path}: not a plugin pack (no plugin.json); "
        "run in the pack's folder or pass --root DIR\n"
    )

    pack = tmp_path / "pack"
    pack.mkdir()
    shutil.copy2(ROOT / "plugin.json", pack / "plugin.json")
    wrote = installed("manifests", "--root", "pack", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.output
    assert "manifests: wrote .claude-plugin/plugin.json" in wrote.stdout
    in_pack = installed("manifests", "--check", cwd=pack)  # the current folder by default
    assert in_pack.returncode == 0, in_pack.output

    missing = installed("manifests", "--check", "--root", "gone", cwd=tmp_path)
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert missing.stderr.startswith("gone: no such folder")


def test_manifests_from_a_wheel_checks_the_checkout_it_runs_in(venv_install: Install) -> None:
    result = venv_install("manifests", "--check", cwd=ROOT)
    assert result.returncode == 0, result.output
    assert result.stdout == "manifests: in sync with plugin.json\n"


# --------------------------------------------------------------------------- the override


def test_an_override_that_names_no_pack_is_one_line(tmp_path: Path) -> None:
    result = run_cli("render", "report", "--vars", str(ROOT / "examples" / "vars" / "report.yaml"),
                     env=cli_env(DISPATCH_KIT_ROOT=str(tmp_path)))
    assert result.returncode == 2
    assert result.stderr == (
        f"{tmp_path}: DISPATCH_KIT_ROOT names no pack (no templates/ folder); "
        "point it at the plugin folder or unset it\n"
    )
