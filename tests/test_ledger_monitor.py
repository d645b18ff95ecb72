"""``ledger events --follow --monitor``: what the plugin's Claude Code monitor prints.

Claude Code hands each line a plugin monitor prints to the model, and tells the
model when one exits, so the command must print only what the model should act
on, from the moment it starts, and never end on its own. These tests run the
real command against a real ledger, drive the ledger with the real hooks and
``ledger`` commands, and wait for each line (or for the monitor to have the
ledger open), never for time.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, run_cli
from test_session_guards import hook, mission, post, pre, project, prompt_for, read_lines

from dispatch_kit.guards.monitor import Monitor

__all__ = ["project"]  # the fixture, shared with test_session_guards
GUARD_S = 60.0  # bounds a hang; nothing waits this long when all is well


def start_monitor(project: Path, argv: list[str] | None = None) -> subprocess.Popen:
    """The monitor in a process session of its own (a shell may stand between)."""
    argv = argv or [sys.executable, "-m", "dispatch_kit", "ledger", "events", "--follow",
                    "--monitor"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=project,
                            env=cli_env(), start_new_session=True)


def session_holds(sid: int, path: Path) -> bool:
    """Whether a process of session ``sid`` has ``path`` open."""
    for pid in session_pids(sid):
        try:
            if any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return True
        except OSError:
            continue
    return False


def wait_until_open(proc: subprocess.Popen, db: Path) -> None:
    """Until the monitor holds ``db`` open: it has found the ledger and reads it from now on."""
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the monitor ended: {proc.stderr.read().decode()}"
        if session_holds(proc.pid, db):
            return
        time.sleep(0.02)  # polling a condition; the monitor itself takes its time
    raise AssertionError(f"the monitor never opened {db}")


def wait_until_waiting(proc: subprocess.Popen) -> None:
    """Until ``proc`` sleeps between its looks: started, signal handlers set, in its loop."""
    deadline = time.monotonic() + GUARD_S
    wchan = Path(f"/proc/{proc.pid}/wchan")
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the monitor ended: {proc.stderr.read().decode()}"
        if "nanosleep" in wchan.read_text():
            return
        time.sleep(0.02)
    raise AssertionError("the monitor never reached its loop")


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == sid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def stop_monitor(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM to the monitor (not to a shell standing between); its exit code and stderr."""
    for pid in [pid for pid in session_pids(proc.pid) if pid != proc.pid] or [proc.pid]:
        os.kill(pid, signal.SIGTERM)
    code = proc.wait(timeout=GUARD_S)
    return code, proc.stderr.read().decode()


def record(project: Path, task: str, *, done: bool) -> None:
    """A verdict as the orchestrator records it: the checker's JSON, then ``ledger record``."""
    if done:
        (project / "src").mkdir(exist_ok=True)
        (project / "src" / f"{task}.txt").write_text("done\n")
    verdict = run_cli("check", "plan.yaml", "--task", task, "--format", "json", cwd=project)
    out = project / f"{task}-check.json"
    out.write_text(verdict.stdout)
    result = run_cli("ledger", "record", task, "--check", str(out), cwd=project)
    assert result.returncode == 0, result.output


@pytest.fixture
def monitor_proc(project: Path):
    procs: list[subprocess.Popen] = []

    def start(argv: list[str] | None = None) -> subprocess.Popen:
        procs.append(start_monitor(project, argv))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def test_the_monitor_prints_a_line_per_verdict_and_nothing_for_the_rest(project, monitor_proc):
    db = mission(project)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tasks SET max_retries = 0 WHERE id = 'lint'")  # one attempt: fails
    conn.commit()
    conn.close()
    proc = monitor_proc()
    wait_until_open(proc, db)
    deadline = time.monotonic() + GUARD_S
    # A dispatch and its agent: the session's own doing, no line.
    first = pre(project, prompt_for(project, "counter"), "toolu_A")
    assert hook("pre-dispatch", first, project).returncode == 0
    assert hook("post-dispatch", post(first, "agent111"), project).returncode == 0
    record(project, "counter", done=True)
    assert read_lines(proc, 1, deadline) == ["dispatch-kit plan: counter #1 verified"]
    record(project, "lint", done=False)
    failed, skipped = read_lines(proc, 2, deadline)
    assert failed.startswith("dispatch-kit plan: lint #1 failed, no attempt left: ")
    assert failed.endswith("`dispatch-kit ledger status --db .dispatch/ledger.db`")
    assert skipped == "dispatch-kit plan: notes skipped (after lint failed)"
    # An agent past its lease: said once, with the agent to stop.
    event = pre(project, prompt_for(project, "tests"), "toolu_T", name="worker-tests-1")
    assert hook("pre-dispatch", event, project).returncode == 0
    assert hook("post-dispatch", post(event, "agentT"), project).returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE claims SET lease_expires = ? WHERE task_id = 'tests'", (time.time() - 5,))
    conn.commit()
    conn.close()
    (hung,) = read_lines(proc, 1, deadline)
    assert hung.startswith("dispatch-kit plan: tests #1 hung (lease expired), agent agentT "
                           "(worker-tests-1), ")
    assert hung.endswith("stop it with TaskStop, then "
                         "`dispatch-kit ledger sweep --db .dispatch/ledger.db`")
    code, stderr = stop_monitor(proc)
    assert code == 0 and "Traceback" not in stderr
    assert proc.stdout.read() == b""  # nothing else was printed: no history, no repeat


def test_without_a_ledger_it_waits_silently_and_follows_one_that_appears(project, monitor_proc):
    proc = monitor_proc()
    db = mission(project)  # the mission starts while the monitor runs
    wait_until_open(proc, db)
    record(project, "counter", done=True)
    assert read_lines(proc, 1, time.monotonic() + GUARD_S) == [
        "dispatch-kit plan: counter #1 verified"]
    code, stderr = stop_monitor(proc)
    assert code == 0 and stderr == ""


def test_in_a_project_without_a_ledger_it_prints_nothing_and_ends_with_0_when_stopped(
        project, monitor_proc):
    monitor = Monitor(cwd=str(project), environ={}, out=io.StringIO())
    monitor.tick()  # what the process does twice a second: a few stat calls
    assert monitor.followed == {} and monitor.out.getvalue() == ""
    proc = monitor_proc()
    wait_until_waiting(proc)  # it looked, found nothing, and waits: it does not end on its own
    code, stderr = stop_monitor(proc)
    assert (code, stderr, proc.stdout.read()) == (0, "", b"")


def test_history_before_the_start_is_not_news_and_a_hung_attempt_is_said_once(project):
    db = mission(project)
    record(project, "counter", done=True)  # before the monitor: not printed
    event = pre(project, prompt_for(project, "tests"), "toolu_T")
    assert hook("pre-dispatch", event, project).returncode == 0
    now = time.time()
    out = io.StringIO()
    monitor = Monitor(cwd=str(project), environ={}, out=out, clock=lambda: now)
    monitor.tick()
    assert out.getvalue() == ""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE claims SET lease_expires = ? WHERE task_id = 'tests'", (now - 1,))
    conn.commit()
    conn.close()
    monitor.followed[str(db)].checked = 0.0  # the next lease check is due
    monitor.tick()
    monitor.followed[str(db)].checked = 0.0
    monitor.tick()
    (line,) = out.getvalue().splitlines()
    assert line.startswith("dispatch-kit plan: tests #1 hung (lease expired), dispatch ")
    monitor.close()


def test_monitor_needs_follow(project):
    result = run_cli("ledger", "events", "--monitor", cwd=project)
    assert result.returncode == 2
    assert "--monitor goes with --follow" in result.stderr


def test_the_shipped_monitor_runs_as_claude_code_runs_it(project, monitor_proc):
    """monitors/monitors.json as the pinned CLI reads it: the entry's fields, and its command
    with ${CLAUDE_PLUGIN_ROOT} substituted, run by a shell in the session's folder."""
    entries = json.loads((ROOT / "monitors" / "monitors.json").read_text(encoding="utf-8"))
    (entry,) = entries
    assert set(entry) == {"name", "command", "description", "when"}
    assert entry["when"] == "always"  # armed at session start, not on a skill's first use
    command = entry["command"].replace("${CLAUDE_PLUGIN_ROOT}", str(ROOT))
    proc = monitor_proc(["sh", "-c", command])
    db = mission(project)
    wait_until_open(proc, db)
    record(project, "counter", done=True)
    assert read_lines(proc, 1, time.monotonic() + GUARD_S) == [
        "dispatch-kit plan: counter #1 verified"]
    code, stderr = stop_monitor(proc)
    assert code == 0 and stderr == ""


def test_it_ends_with_0_once_nobody_reads_its_output(project, monitor_proc):
    """Claude Code killed outright leaves the monitor's shell behind as its parent: the closed
    socket (here a pipe) is what tells it to end."""
    proc = monitor_proc()
    wait_until_waiting(proc)
    proc.stdout.close()
    assert proc.wait(timeout=GUARD_S) == 0
    assert proc.stderr.read() == b""
