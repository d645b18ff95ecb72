"""Running the real ``claude`` CLI with the plugin against a scripted model.

One place for what every real-session test needs: a throwaway HOME whose
plugin data folder is shared by the test run (so only the first session pays
the launcher's environment build), an environment that ties the CLI to no
real account, and a runner that bounds each session with a guard and kills
everything the session started (hooks, workers) when it ends or is cut short.
A scripted model stands in for the model only; see :mod:`scripted_model`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, require_tool
from scripted_model import Request, ScriptedModel

# What the scripts call; as root --dangerously-skip-permissions is refused.
ALLOWED_TOOLS = "Agent Bash Read Write Edit Workflow"
GUARD_S = 90.0


@dataclass
class Session:
    """What one ``claude -p`` run left behind: exit code, output, result and debug log."""

    returncode: int
    stdout: str
    stderr: str
    debug_log: str

    @property
    def result(self) -> dict:
        """The ``--output-format json`` result object (empty when stdout was not JSON)."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            return {}

    def hook_lines(self, event: str) -> list[str]:
        """Debug-log lines reporting how a hook for ``event`` (e.g. PreToolUse:Agent) ended."""
        return [
            line
            for line in self.debug_log.splitlines()
            if f"Hooks: {event} " in line and "finished with status" in line
        ]

    def evidence(self, model: ScriptedModel) -> str:
        """Everything a failure message needs: the requests, output and the debug log's end."""
        tail = "\n".join(self.debug_log.splitlines()[-60:])
        return (
            f"exit {self.returncode}\nrequests:\n{model.transcript()}\n"
            f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-2000:]}\n"
            f"debug log (end):\n{tail}"
        )


@pytest.fixture(scope="module")
def claude() -> str:
    """The pinned CLI (``make setup`` puts it in tools/node_modules/.bin)."""
    return require_tool("claude")


@pytest.fixture(scope="session")
def plugin_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plugin data folder for every session of the test run."""
    return tmp_path_factory.mktemp("plugin-data")


def make_home(folder: Path, plugin_data: Path) -> Path:
    """A throwaway HOME under ``folder`` whose plugin data folder is the shared one.

    Claude Code sets ``CLAUDE_PLUGIN_DATA`` for a ``--plugin-dir`` plugin to
    ``~/.claude/plugins/data/<name>-inline`` whatever the environment says,
    so the shared folder is linked in at that place.
    """
    home = folder / "home"
    data = home / ".claude" / "plugins" / "data"
    data.mkdir(parents=True)
    (data / "dispatch-kit-inline").symlink_to(plugin_data, target_is_directory=True)
    return home


@pytest.fixture
def home(tmp_path: Path, plugin_data: Path) -> Path:
    return make_home(tmp_path, plugin_data)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The user's project folder: empty, and not the checkout."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def session_env(home: Path, model: ScriptedModel) -> dict[str, str]:
    """The caller's environment minus anything that ties ``claude`` to a real account or
    session (keys, config folder, an enclosing Claude Code session), pointed at the model."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE_", "CLAUDECODE", "DISPATCH_KIT_"))
    }
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=model.base_url,
        ANTHROPIC_API_KEY="dummy",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
    )
    return env


def end_session_processes(sid: int) -> None:
    """SIGKILL every process left in session ``sid`` (the one the runner started): a
    process group is not enough, since hooks and workers may start groups of their own."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def run_claude(
    claude: str,
    model: ScriptedModel,
    home: Path,
    cwd: Path,
    *args: str,
    allowed_tools: str = ALLOWED_TOOLS,
    guard_s: float = GUARD_S,
    kill_when: Callable[[Request], bool] | None = None,
) -> Session:
    """``claude -p ARGS`` with the plugin against ``model``, in ``cwd``.

    With ``kill_when`` the session is killed (its whole process session,
    SIGKILL) as soon as the scripted model has received a request matching it,
    like a machine going down mid-mission. Without it the session must end on
    its own within the guard, which only bounds a hang: nothing waits a fixed time.
    """
    debug_file = home / "debug.log"
    argv = [
        claude, "-p", *args,
        "--plugin-dir", str(ROOT),
        "--debug-file", str(debug_file),
        "--output-format", "json",
        "--permission-mode", "acceptEdits",
        "--allowedTools", allowed_tools,
    ]
    proc = subprocess.Popen(
        argv, cwd=cwd, env=session_env(home, model), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )

    def log() -> str:
        return debug_file.read_text(errors="replace") if debug_file.exists() else ""

    killed = False
    try:
        if kill_when is not None:
            seen = model.wait_for(kill_when, timeout=guard_s)
            end_session_processes(proc.pid)
            killed = True
            assert seen is not None, "the kill point never came"
        stdout, stderr = proc.communicate(timeout=guard_s)
    except subprocess.TimeoutExpired:
        end_session_processes(proc.pid)
        stdout, stderr = proc.communicate()
        late = Session(-1, stdout.decode(errors="replace"), stderr.decode(errors="replace"), log())
        pytest.fail(f"claude ran past {guard_s} s\n{late.evidence(model)}")
    finally:
        if killed or proc.returncode is None:
            end_session_processes(proc.pid)
    return Session(
        proc.returncode,
        stdout.decode("utf-8", "replace"),
        stderr.decode("utf-8", "replace"),
        log(),
    )


# A two-task plan for sessions that dispatch `counter` (the guards' and the monitor's).
COUNTER_PLAN = """\
goal: One counter file
workspace: .
allow_commits: false
defaults: {timeout: 600, max_retries: 3}
tasks:
  - id: counter
    title: Write the counter
    type: coding
    cwd: src
    exit_criteria: [{file_exists: counter.txt}]
  - id: docs
    title: Document the counter
    type: research
    cwd: docs
    depends_on: [counter]
    exit_criteria: [{file_exists: docs.txt}]
"""
