"""Issue 13, processes: criteria and workers that start a new session no longer outlive
``check`` and ``run``.

Each case starts a ``sleep`` in a new session (``start_new_session``, what
``setsid`` does), writes its pid to a file and exits, so the sleep is an
orphan outside every process group dispatch-kit kills. On Linux ``check``,
``run`` and a detached worker's supervisor adopt such orphans
(PR_SET_CHILD_SUBREAPER) and kill them at the end. The tests wait for the pid
file (written before the command returns) and then look at /proc, with the
process's start time so a reused pid is not mistaken for the sleep.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from test_runner import gone, small_plan, wait_for

from dispatch_kit.procs import groups as procs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the subreaper is Linux only (documented)")

# Start `sleep 300` in a new session, write its pid and start time, exit.
ESCAPE = (
    "import os, subprocess, sys; p = subprocess.Popen(['sleep', '300'], start_new_session=True,"
    " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
    " open(sys.argv[1] + '.tmp', 'w').write(str(p.pid)); os.rename(sys.argv[1] + '.tmp',"
    " sys.argv[1])"
)


def escape_command(pid_file: Path) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(ESCAPE)} {shlex.quote(str(pid_file))}"


def escaped_pid(pid_file: Path) -> int:
    return int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))


def assert_gone(pid: int) -> None:
    try:
        assert gone(pid), f"pid {pid} outlived the command: {procs.pid_start(pid)}"
    finally:
        if not gone(pid):
            import os
            import signal

            os.kill(pid, signal.SIGKILL)


def test_check_kills_what_a_criterion_started_in_a_new_session(tmp_path, cli):
    pid_file = tmp_path / "criterion.pid"
    plan = small_plan(tmp_path, [{"id": "a", "criteria": [escape_command(pid_file)]},
                                 {"id": "b"}])
    (tmp_path / "ws" / "a").mkdir(parents=True)
    result = cli("check", str(plan), "--task", "a", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    assert_gone(escaped_pid(pid_file))


def test_run_kills_what_a_worker_started_in_a_new_session(tmp_path, cli):
    pid_file = tmp_path / "worker.pid"
    plan = small_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]}], retries=0)
    worker = f"if [ {{task}} = a ]; then {escape_command(pid_file)}; fi; touch done.txt"
    result = cli("run", str(plan), "--worker", worker, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert_gone(escaped_pid(pid_file))


def test_the_detached_supervisor_kills_what_its_worker_started(tmp_path, cli):
    pid_file = tmp_path / "worker.pid"
    done = tmp_path / "ws" / "a" / "done.txt"
    plan = small_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]}], retries=0)
    worker = f"if [ {{task}} = a ]; then {escape_command(pid_file)}; fi; touch done.txt"
    result = cli("run", str(plan), "--worker", worker, "--detach")
    assert result.returncode == 0, result.stderr
    pid = escaped_pid(pid_file)
    wait_for(done.exists)
    exit_files = lambda: list(tmp_path.rglob("*.exit.json"))  # noqa: E731
    wait_for(exit_files)  # the supervisor writes it after killing the leftovers
    assert_gone(pid)
