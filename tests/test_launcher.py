"""``bin/dispatch-kit``: the command a skill calls right after the plugin is installed.

Claude Code puts the plugin's ``bin/`` on the Bash tool's PATH; nobody has run
pip at that point. The launcher must run the CLI straight away when python3
already has the dependencies, install them once into a private environment
when it does not (also when two calls race for it), and otherwise say in one
line what to run. These tests run the real launcher as a real process with a
python3 of each kind first on PATH; installs use a local wheel folder so they
need no network after the first run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

LAUNCHER = ROOT / "bin" / "dispatch-kit"
REQUIREMENTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own user cache: the launcher records its interpreter there, and a
    record left by the user's own runs (or another test) must not decide a test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


def python3_dir(tmp: Path, python: str) -> Path:
    """A folder holding a ``python3`` that runs ``python``, to put first on PATH."""
    folder = tmp / "python-on-path"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
    wrapper.chmod(0o755)
    return folder


def launcher_env(path_first: Path | None, **extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would let pip or Python cheat.

    pip settings are dropped so that each test says exactly where packages may
    come from; PYTHONPATH is dropped so the launcher alone decides where the
    package is found.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "CLAUDE_PLUGIN_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def launch(
    *args: str, env: dict[str, str], cwd: Path, launcher: Path = LAUNCHER
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(launcher), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=240
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def expected_version() -> str:
    return run_cli("--version").stdout


def environments(venvs: Path) -> list[str]:
    return sorted(item.name for item in venvs.iterdir() if item.is_dir())


# --- python3 already has the dependencies ----------------------------------


def test_runs_from_any_cwd_and_through_a_symlink(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = launcher_env(python3_dir(tmp_path, sys.executable), CLAUDE_PLUGIN_DATA=str(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "linked-bin" / "dispatch-kit"
    link.parent.mkdir()
    link.symlink_to(LAUNCHER)

    direct = launch("--version", env=env, cwd=elsewhere)
    linked = launch("--version", env=env, cwd=elsewhere, launcher=link)

    assert direct.returncode == 0, direct.stderr
    assert linked.returncode == 0, linked.stderr
    assert direct.stdout == linked.stdout == expected_version()
    assert direct.stderr == linked.stderr == ""
    # Nothing installed when the dependencies are there: the only state is the
    # record of the resolved interpreter, for the next call.
    assert sorted(item.name for item in data.iterdir()) == ["python"]
    assert (data / "python").read_text().splitlines()[0] == sys.executable


def test_passes_arguments_and_exit_codes_through(tmp_path: Path) -> None:
    env = launcher_env(python3_dir(tmp_path, sys.executable), CLAUDE_PLUGIN_DATA=str(tmp_path))
    ok = launch("manifests", "--check", env=env, cwd=tmp_path)
    bad = launch("no-such-command", env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr


def test_no_python3_on_path_says_so_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = launcher_env(None, PATH=str(empty))
    proc = launch("--version", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dispatch-kit: python3 not found"), lines


def test_hook_fails_open_when_there_is_no_python3(tmp_path: Path) -> None:
    # The PreToolUse hook runs through this launcher before every dispatch; exit 2
    # would block them all, so a launcher that cannot start lets them through.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = launcher_env(None, PATH=str(empty))
    proc = launch("hook", "pre-dispatch", env=env, cwd=tmp_path)
    assert proc.returncode == 0
    assert "python3 not found" in proc.stderr


# --- python3 without the dependencies ---------------------------------------


@pytest.fixture(scope="module")
def wheelhouse(request: pytest.FixtureRequest) -> Path:
    """Wheels for the dependencies, downloaded once and kept in pytest's cache."""
    folder = Path(request.config.cache.mkdir("dispatch-kit-wheels"))
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder)]
    offline = subprocess.run(
        [*pip, "--no-index", "--find-links", str(folder), *REQUIREMENTS], capture_output=True
    )
    if offline.returncode != 0:
        online = subprocess.run([*pip, *REQUIREMENTS], capture_output=True, text=True)
        if online.returncode != 0:
            message = f"cannot download wheels for the install test: {online.stderr[-300:]}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    return folder


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python3 that has pip but none of the dependencies: a fresh venv."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import yaml"], capture_output=True)
    assert probe.returncode != 0, "the bare venv can import yaml; the test would prove nothing"
    return python


@pytest.fixture(scope="module")
def pipless_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python3 with neither pip nor the dependencies (as on a minimal system image)."""
    venv = tmp_path_factory.mktemp("pipless") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory, bare_python: Path, wheelhouse: Path
) -> dict[str, object]:
    """Two launchers started together on an empty data folder (the race), run once."""
    tmp = tmp_path_factory.mktemp("race")
    data = tmp / "data"
    env = launcher_env(
        python3_dir(tmp, str(bare_python)),
        CLAUDE_PLUGIN_DATA=str(data),
        XDG_CACHE_HOME=str(tmp / "cache"),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
    )
    procs = [
        subprocess.Popen(
            [str(LAUNCHER), "--version"],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    results = [(proc.returncode, *output) for proc, output in zip(procs, outputs, strict=True)]
    return {"tmp": tmp, "data": data, "env": env, "results": results}


def test_racing_launchers_install_once_and_both_run(installed: dict[str, object]) -> None:
    data = installed["data"]
    assert isinstance(data, Path)
    for code, stdout, stderr in installed["results"]:  # type: ignore[attr-defined]
        assert "Traceback" not in stderr
        assert code == 0, stderr
        assert stdout == expected_version()
        assert stderr == ""  # progress lines are for terminals only
    venvs = data / "venvs"
    assert len(environments(venvs)) == 1, environments(venvs)
    assert not [item for item in venvs.iterdir() if item.name.startswith(".build-")]
    log = (venvs / "install.log").read_text()
    assert log.count("== build ") == 1, log  # the second caller waited and reused


def test_later_calls_reuse_the_environment(installed: dict[str, object]) -> None:
    data, env, tmp = installed["data"], installed["env"], installed["tmp"]
    assert isinstance(data, Path) and isinstance(tmp, Path) and isinstance(env, dict)
    before = environments(data / "venvs")
    proc = launch("manifests", "--check", env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert environments(data / "venvs") == before
    assert (data / "venvs" / "install.log").read_text().count("== build ") == 1


NESTED_PLAN = """\
goal: A command that dispatch-kit runs calls dispatch-kit again.
workspace: .
tasks:
  - id: nested
    title: Call the launcher from a criterion
    type: coding
    cwd: .
    description: The criterion runs the launcher found on PATH.
    exit_criteria:
      - "dispatch-kit --version | grep -q '^dispatch-kit '"
  - id: other
    title: A second task (plans have two or more)
    type: coding
    cwd: .
    description: Nothing to do.
    exit_criteria:
      - "true"
"""


def test_commands_run_by_the_cli_can_call_it_again(
    installed: dict[str, object], tmp_path: Path
) -> None:
    """The re-executed CLI runs criteria and workers; a nested call must start afresh.

    Here ``check`` runs under the environment's python and its criterion calls
    ``dispatch-kit`` from PATH, which lands on python3 without the packages
    again: it must reuse the environment rather than report it broken.
    """
    env = dict(installed["env"])  # type: ignore[call-overload]
    env["PATH"] = f"{LAUNCHER.parent}{os.pathsep}{env['PATH']}"
    plan = tmp_path / "plan.yaml"
    plan.write_text(NESTED_PLAN)
    proc = launch("check", str(plan), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nested" in proc.stdout


def plugin_copy(tmp: Path, extra_requirement: str) -> Path:
    """The launcher, package and pyproject.toml in a new folder, with one more dependency."""
    root = tmp / "plugin"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(LAUNCHER, root / "bin" / "dispatch-kit")
    shutil.copytree(
        ROOT / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__pycache__")
    )
    text = (ROOT / "pyproject.toml").read_text()
    anchor = "dependencies = ["
    assert anchor in text
    (root / "pyproject.toml").write_text(
        text.replace(anchor, f'{anchor}\n  "{extra_requirement}",')
    )
    return root


def test_new_dependency_means_a_new_environment(
    installed: dict[str, object], tmp_path: Path
) -> None:
    """An update that adds a dependency must not run with the old environment."""
    data, env = installed["data"], installed["env"]
    assert isinstance(data, Path) and isinstance(env, dict)
    before = environments(data / "venvs")
    root = plugin_copy(tmp_path, "dispatch-kit-absent-package>=1.0")

    proc = launch("--version", env=env, cwd=tmp_path, launcher=root / "bin" / "dispatch-kit")

    # The wheel folder does not have it: the new environment cannot be built,
    # which shows the launcher read the new list (pyproject.toml is its source).
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "dispatch-kit-absent-package" in lines[0]
    assert environments(data / "venvs") == before  # the old one untouched, nothing half-built


def test_install_impossible_says_what_to_run(pipless_python: Path, tmp_path: Path) -> None:
    """Offline, no index: one line with the command to run, exit 2, nothing half-built.

    This python has no pip of its own, so the launcher also goes through its
    fallback (ensurepip inside the new environment) before pip fails.
    """
    cache = tmp_path / "cache"
    env = launcher_env(
        python3_dir(tmp_path, str(pipless_python)), XDG_CACHE_HOME=str(cache), PIP_NO_INDEX="1"
    )
    proc = launch("--version", env=env, cwd=tmp_path)

    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("dispatch-kit: cannot install dependencies")
    # The command to run names every dependency exactly as pyproject.toml does.
    assert "run: python3 -m pip install" in line
    for requirement in REQUIREMENTS:
        assert requirement in line
    # Without CLAUDE_PLUGIN_DATA the user cache is used, and nothing half-built stays there.
    venvs = cache / "dispatch-kit" / "venvs"
    assert environments(venvs) == []
    assert (venvs / "install.log").is_file()


BAD_DISPATCH = (
    '{"hook_event_name": "PreToolUse", "tool_name": "Agent", "tool_input": '
    '{"prompt": "[Execute] Task `counter` attempt 1. Reply DONE."}}'
)


def hook(event: str, env: dict[str, str], cwd: Path, name: str = "pre-dispatch"):
    proc = subprocess.run(
        [str(LAUNCHER), "hook", name], input=event, env=env, cwd=cwd,
        capture_output=True, text=True, timeout=240,
    )
    assert "Traceback" not in proc.stderr
    return proc


def background_build_pid(stderr: str) -> int:
    """The pid the launcher names when it starts a build in the background."""
    marker = "in the background (pid "
    assert marker in stderr, stderr
    return int(stderr.split(marker, 1)[1].split(")", 1)[0])


def wait_for_exit(pid: int, timeout: float = 240) -> None:
    """Block until a process that is not our child has ended (a pidfd, not a poll)."""
    import select

    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([handle], [], [], timeout)
        assert ready, f"process {pid} still running after {timeout} s"
    finally:
        os.close(handle)


def test_first_dispatch_is_checked_without_waiting_for_the_build(
    bare_python: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """Right after install nothing is built: the hook lints with the python it has
    (its code needs only the standard library) and builds the environment meanwhile."""
    data = tmp_path / "data"
    env = launcher_env(
        python3_dir(tmp_path, str(bare_python)), CLAUDE_PLUGIN_DATA=str(data),
        PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
    )
    proc = hook(BAD_DISPATCH, env, tmp_path)
    assert proc.returncode == 2, proc.stderr  # checked for real: the bad prompt is blocked
    assert "DK201" in proc.stderr
    wait_for_exit(background_build_pid(proc.stderr))
    (name,) = environments(data / "venvs")
    python = data / "venvs" / name / "bin" / "python"
    assert (data / "python").read_text().splitlines()[0] == str(python)
    # The next dispatch runs in the built environment, through the record.
    again = hook(BAD_DISPATCH, env, tmp_path)
    assert again.returncode == 2 and "in the background" not in again.stderr


def test_session_start_readies_the_environment_and_returns_at_once(
    bare_python: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = launcher_env(
        python3_dir(tmp_path, str(bare_python)), CLAUDE_PLUGIN_DATA=str(data),
        PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
    )
    proc = hook('{"hook_event_name": "SessionStart", "source": "startup"}', env, tmp_path,
                name="session-start")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr  # stdout would be context
    wait_for_exit(background_build_pid(proc.stderr))
    assert len(environments(data / "venvs")) == 1
    assert launch("--version", env=env, cwd=tmp_path).stdout == expected_version()


def test_the_monitor_starts_at_once_while_the_environment_is_built(
    bare_python: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """Claude Code starts the plugin's monitor with the session, maybe before anything is
    built: like a hook, it runs with the python it has (standard library only)."""
    data = tmp_path / "data"
    env = launcher_env(
        python3_dir(tmp_path, str(bare_python)), CLAUDE_PLUGIN_DATA=str(data),
        PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
    )
    proc = subprocess.Popen(
        [str(LAUNCHER), "ledger", "events", "--follow", "--monitor"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()  # the launcher's one line, then the monitor runs
        wait_for_exit(background_build_pid(line))
        # Following (no ledger here: it waits between looks) with the python it was given,
        # not one of the built environment.
        wchan, deadline = Path(f"/proc/{proc.pid}/wchan"), time.monotonic() + 60
        while "nanosleep" not in wchan.read_text():  # polling a condition, under a guard
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the monitor never reached its loop"
            time.sleep(0.02)
        argv0 = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert str(data) not in argv0, argv0
        proc.terminate()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == "" and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_hook_fails_open_when_dependencies_cannot_be_installed(
    pipless_python: Path, tmp_path: Path
) -> None:
    """The background build fails (no index, no pip): dispatches go on being checked,
    and the next command that needs the environment says what to run."""
    env = launcher_env(
        python3_dir(tmp_path, str(pipless_python)),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PIP_NO_INDEX="1",
    )
    proc = hook(BAD_DISPATCH, env, tmp_path)
    assert proc.returncode == 2 and "DK201" in proc.stderr, proc.stderr
    wait_for_exit(background_build_pid(proc.stderr))
    log = tmp_path / "cache" / "dispatch-kit" / "venvs" / "install.log"
    assert "== build " in log.read_text()
    after = launch("--version", env=env, cwd=tmp_path)
    assert after.returncode == 2
    assert after.stderr.startswith("dispatch-kit: cannot install dependencies")


def test_the_recorded_interpreter_skips_the_shim(tmp_path: Path) -> None:
    """pyenv-style shims cost tens of ms per call: only the first call may go through one."""
    data = tmp_path / "data"
    shims = tmp_path / "shims"
    shims.mkdir()
    calls = tmp_path / "shim-calls"
    shim = shims / "python3"
    shim.write_text(f'#!/bin/sh\necho call >> "{calls}"\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    env = launcher_env(shims, CLAUDE_PLUGIN_DATA=str(data))
    for _ in range(3):
        proc = launch("--version", env=env, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout == expected_version(), proc.stderr
    assert calls.read_text().count("call") == 1


def test_a_stale_record_is_not_trusted(tmp_path: Path) -> None:
    """A record naming a python that is gone, or written for another plugin folder, or one
    whose dependency folders changed since, sends the call back through PATH."""
    data = tmp_path / "data"
    env = launcher_env(python3_dir(tmp_path, sys.executable), CLAUDE_PLUGIN_DATA=str(data))
    assert launch("--version", env=env, cwd=tmp_path).returncode == 0
    record = data / "python"
    good = record.read_text()
    python, stamp = good.splitlines()
    for broken in (
        f"{tmp_path}/gone/python\n{stamp}\n",
        f"{python}\n{stamp.replace(str(ROOT), str(tmp_path))}\n",
        f"{python}\n{stamp[:-1]}0\n" if not stamp.endswith("0") else f"{python}\n{stamp[:-1]}1\n",
        "garbage",
    ):
        record.write_text(broken)
        proc = launch("--version", env=env, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout == expected_version(), proc.stderr
        assert record.read_text() == good  # checked again and written afresh


def test_bytecode_goes_to_the_data_folder_when_the_environment_forbids_it(
    tmp_path: Path,
) -> None:
    """PYTHONDONTWRITEBYTECODE would make every hook compile the package: keep the
    bytecode in the data folder instead, never beside the plugin's sources, and hand
    none of that to the commands the CLI runs."""
    root = tmp_path / "plugin"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(LAUNCHER, root / "bin" / "dispatch-kit")
    for folder in ("scripts", "templates", "agents"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    data = tmp_path / "data"
    env = launcher_env(
        python3_dir(tmp_path, sys.executable), CLAUDE_PLUGIN_DATA=str(data),
        PYTHONDONTWRITEBYTECODE="1",
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(NESTED_PLAN.replace(
        "dispatch-kit --version | grep -q '^dispatch-kit '",
        "env > criterion-env.txt",
    ))
    launcher = root / "bin" / "dispatch-kit"
    proc = launch("check", str(plan), env=env, cwd=tmp_path, launcher=launcher)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(root.rglob("__pycache__"))
    assert list((data / "pycache").rglob("cli/__init__.*.pyc"))
    seen = dict(
        line.split("=", 1) for line in (tmp_path / "criterion-env.txt").read_text().splitlines()
        if "=" in line
    )
    # No PYTHONPYCACHEPREFIX of the launcher's own, and the user's setting unchanged.
    assert str(data) not in seen.get("PYTHONPYCACHEPREFIX", "")
    assert seen.get("PYTHONDONTWRITEBYTECODE") == "1"


def test_broken_environment_is_reported_not_looped(
    installed: dict[str, object], pipless_python: Path, tmp_path: Path
) -> None:
    """An environment that lost its packages gets a one-line fix, not an exec loop."""
    good = Path(installed["data"]) / "venvs"  # type: ignore[arg-type]
    name = environments(good)[0]
    data = tmp_path / "data"
    broken = data / "venvs" / name
    (broken / "bin").mkdir(parents=True)
    for marker in (good / name).iterdir():
        if marker.is_file():
            shutil.copy2(marker, broken / marker.name)
    (broken / "bin" / "python").symlink_to(pipless_python)  # a python without the packages
    env = launcher_env(
        python3_dir(tmp_path, str(pipless_python)), CLAUDE_PLUGIN_DATA=str(data), PIP_NO_INDEX="1"
    )
    proc = launch("--version", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert str(broken) in lines[0] and "delete that folder" in lines[0]


def test_environments_unused_for_two_weeks_are_deleted(installed: dict[str, object]) -> None:
    """Plugin updates build new environments; the launcher must not keep every old one."""
    data, env, tmp = installed["data"], installed["env"], installed["tmp"]
    assert isinstance(data, Path) and isinstance(tmp, Path) and isinstance(env, dict)
    venvs = data / "venvs"
    (current,) = environments(venvs)
    day = 86400.0
    now = time.time()

    def fake(name: str, idle_days: float, ready: bool = True) -> Path:
        folder = venvs / name
        folder.mkdir()
        if ready:
            marker = folder / "dispatch-kit-ready"
            marker.write_text("old requirements\n")
            os.utime(marker, (now - idle_days * day, now - idle_days * day))
        return folder

    stale = fake("py3.11-0123456789ab", idle_days=30)
    recent = fake("py3.11-abcdef012345", idle_days=3)
    unfinished = fake("py3.11-aaaaaaaaaaaa", idle_days=30, ready=False)
    foreign = venvs / "notes-kept-by-someone"
    foreign.mkdir()
    # The environment in use was last used long ago too: using it now must refresh it.
    marker = venvs / current / "dispatch-kit-ready"
    os.utime(marker, (now - 30 * day, now - 30 * day))
    (venvs / ".last-cleanup").unlink(missing_ok=True)

    proc = launch("--version", env=env, cwd=tmp)

    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert recent.exists() and unfinished.exists() and foreign.exists()
    assert (venvs / current).exists() and now - marker.stat().st_mtime < day
    # At most once a day: a second stale environment waits for the next day's clean-up.
    stale_again = fake("py3.11-0123456789ab", idle_days=30)
    assert launch("--version", env=env, cwd=tmp).returncode == 0
    assert stale_again.exists()
    for folder in (recent, unfinished, foreign, stale_again):
        shutil.rmtree(folder)
