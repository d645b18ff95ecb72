"""``dispatch-kit run`` with real worker processes: no mock of the runner, the checker or SQLite."""

from __future__ import annotations

import errno
import json
import os
import select
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ENVIRONMENTS, EXAMPLES, cli_env, env_for

WORKER = EXAMPLES / "wordcount" / "worker.py"
WORDCOUNT = f"{shlex.quote(sys.executable)} {shlex.quote(str(WORKER))}"


def copy_example(tmp_path: Path) -> Path:
    """The bundled mission, copied so workers write into a scratch workspace."""
    shutil.copy(EXAMPLES / "wordcount" / "plan.yaml", tmp_path / "plan.yaml")
    shutil.copytree(EXAMPLES / "wordcount" / "workspace", tmp_path / "workspace")
    return tmp_path / "plan.yaml"


def small_plan(tmp_path: Path, tasks: list[dict], *, timeout: int = 20, retries: int = 1) -> Path:
    """A plan of ``tasks`` (id, optional depends_on, criterion file done.txt in its cwd)."""
    doc = {
        "goal": "Exercise the runner",
        "workspace": "ws",
        "defaults": {"timeout": timeout, "max_retries": retries},
        "tasks": [
            {
                "id": t["id"],
                "title": f"Task {t['id']}",
                "type": "coding",
                "cwd": t["id"],
                "depends_on": t.get("depends_on", []),
                "exit_criteria": t.get("criteria", [{"file_exists": "done.txt"}]),
            }
            for t in tasks
        ],
    }
    path = tmp_path / "plan.yaml"
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML too
    return path


def calls(log: Path) -> Counter:
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def db_states(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db, timeout=10)
    try:
        return dict(conn.execute("SELECT id, state FROM tasks").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def holds_a_claim(db: Path, pid: int) -> bool:
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=10)
    try:
        return bool(conn.execute("SELECT COUNT(*) FROM claims WHERE holder_pid = ?",
                                 (pid,)).fetchone()[0])
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


# Generous bounds on waits that normally end in a second: they only stop a test that really
# hangs, and must not fail one that ran on a machine busy with other work.
GUARD = 120.0


def wait_for(predicate, timeout: float = GUARD, every: float = 0.05):
    """Poll ``predicate`` until it holds; ``timeout`` is a guard, not an expected duration."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def wait_for_exit(pid: int, timeout: float = GUARD) -> None:
    """Block until a process that is not our child has ended (a pidfd, not a poll).

    A detached supervisor often ends a few hundredths of a second after ``run --detach``
    returned, before we get to open it: that is "already ended", not an error.
    """
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([handle], [], [], timeout)[0], f"process {pid} still running"
    finally:
        os.close(handle)


def release(fifo: Path, timeout: float = GUARD) -> None:
    """Write one line to ``fifo`` once a reader (a worker waiting on it) has opened it."""

    def writer() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: nobody reads it yet
            if exc.errno != errno.ENXIO:
                raise
            return None

    fd = wait_for(writer, timeout)
    try:
        os.write(fd, b"go\n")
    finally:
        os.close(fd)


def run_env(**extra: str) -> dict[str, str]:
    return cli_env(**extra)


def start_run(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dispatch_kit", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


def read_until(proc: subprocess.Popen, needle: str, timeout: float = GUARD) -> str:
    """Read the runner's stderr until a progress line contains ``needle``; return what was read.

    A progress line is the runner's own word that it reached a state (a worker
    recorded and watched, say), so a test can act on it without guessing a delay.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while needle.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"no {needle!r} from the runner; it said: {seen.decode()!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"the runner ended before {needle!r}: {seen.decode()!r}")
        seen += chunk
    return seen.decode()


# --------------------------------------------------------------------------- the example mission


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_example_mission_retries_fails_for_good_and_skips(tmp_path, cli, environment):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    env = env_for(environment, WORDCOUNT_WORKER_LOG=str(log))
    result = cli("run", str(plan), "--worker", WORDCOUNT, env=env)
    assert result.returncode == 1, result.stderr
    # Each task was dispatched as often as its story says, review never.
    assert calls(log) == Counter({"counter": 1, "tests": 2, "guide": 4})
    ws = tmp_path / "workspace"
    assert (ws / "src" / "wordcount.py").is_file()
    assert "assertEqual(count_words(\"one  two   three\"), 3)" in (
        ws / "tests" / "test_wordcount.py").read_text()
    assert not (ws / "review").exists() or not (ws / "review" / "verdict.md").exists()
    # The retry prompt carried the previous failure to the worker.
    runs = ws / ".dispatch" / "runs" / "plan"
    retry_prompt = (runs / "tests.attempt-2.prompt.md").read_text()
    assert retry_prompt.startswith("[Execute]") and "attempt 1/4" in retry_prompt
    assert "AssertionError: 3 != 5" in retry_prompt
    # Progress lines, then the Markdown report on stdout.
    for line in ("dispatched counter (attempt 1/4", "retrying tests: attempt 2/4 next: criterion 2",
                 "verified tests (attempt 2/4)",
                 "failed guide after 4 attempts", "skipped review (depends on guide)"):
        assert line in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith(
        "Mission finished with failures: 2 verified, 1 failed, 1 skipped of 4 tasks")
    report = result.stdout
    assert "Result: incomplete, 2 of 4 tasks verified, 1 failed, 1 skipped." in report
    assert "| `tests` Cover the counter with unit tests | verified | 2 |" in report
    assert "| `guide` Write the usage guide | failed | 4 |" in report
    assert "usage.md has 24 bytes, needs at least 200" in report
    assert f"Output: `{ws}`" in report
    status = json.loads(cli("ledger", "status", "--format", "json", "--db",
                            str(ws / ".dispatch" / "ledger.db")).stdout)
    assert [(t["id"], t["status"], t["attempts"]) for t in status["tasks"]] == [
        ("counter", "verified", 1), ("tests", "verified", 2), ("guide", "failed", 4),
        ("review", "skipped", 0)]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_all_pass_mission_exits_0_and_a_rerun_redoes_nothing(tmp_path, cli, environment):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    env = env_for(environment, WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass")
    first = cli("run", str(plan), "--worker", WORDCOUNT, "--wip", "2", "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["state"] == "complete" and report["counts"]["verified"] == 4
    verdict = (tmp_path / "workspace" / "review" / "verdict.md").read_text()
    assert verdict.rstrip().splitlines()[-1] == "VERDICT: PASS"
    assert calls(log) == Counter({"counter": 1, "tests": 1, "guide": 1, "review": 1})
    again = cli("run", str(plan), "--worker", WORDCOUNT, "--quiet", env=env)
    assert again.returncode == 0 and again.stderr == ""
    assert calls(log) == Counter({"counter": 1, "tests": 1, "guide": 1, "review": 1})
    # The project moves (a new clone path, a renamed folder): its ledger moves with it.
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(tmp_path / "plan.yaml", moved / "plan.yaml")
    shutil.move(tmp_path / "workspace", moved / "workspace")
    after = cli("run", str(moved / "plan.yaml"), "--worker", WORDCOUNT, "--format", "json",
                env=env)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["workspace"] == str((moved / "workspace").resolve())
    assert calls(log) == Counter({"counter": 1, "tests": 1, "guide": 1, "review": 1})


def test_kill_9_at_any_moment_then_resume_redoes_no_verified_task(tmp_path, cli):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    db = tmp_path / "workspace" / ".dispatch" / "ledger.db"
    env = run_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                  WORDCOUNT_WORKER_DELAY="0.4")
    frozen: dict[str, int] = {}  # task -> dispatch count when it was first seen verified
    for moment in ("at its first claim", "right after a verdict", "mid-worker"):
        runner = start_run(str(plan), "--worker", WORDCOUNT, "--quiet", env=env)
        wait_for(lambda pid=runner.pid: holds_a_claim(db, pid))
        if moment == "right after a verdict":
            before = sum(s == "verified" for s in db_states(db).values())
            wait_for(lambda n=before: sum(s == "verified" for s in db_states(db).values()) > n,
                     every=0.005)
        elif moment == "mid-worker":  # the worker logs its start, then works for 0.4 s
            # If this runner only adopted the last worker, no new one starts: then it ends
            # with the mission complete, and that is as far as this moment goes.
            before = sum(calls(log).values())
            wait_for(lambda n=before, r=runner: sum(calls(log).values()) > n or
                     r.poll() is not None, every=0.005)
        runner.send_signal(signal.SIGKILL)
        runner.communicate()
        seen = calls(log)
        for task, state in db_states(db).items():
            if state == "verified":
                frozen.setdefault(task, seen[task])
    assert frozen, "no task got verified before the last kill"
    final = cli("run", str(plan), "--worker", WORDCOUNT, "--format", "json", env=env)
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["state"] == "complete"
    seen = calls(log)
    assert {task: seen[task] for task in frozen} == frozen  # nothing verified was redone
    assert set(seen) == {"counter", "tests", "guide", "review"}
    # No attempt ran twice at once: each (task, attempt) was started at most once.
    pairs = Counter(tuple(line.split()[:2]) for line in log.read_text().splitlines())
    assert max(pairs.values()) == 1, pairs


def test_a_new_runner_adopts_a_live_worker_and_keeps_its_output(tmp_path):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    db = tmp_path / "workspace" / ".dispatch" / "ledger.db"
    go = tmp_path / "go.pipe"
    os.mkfifo(go)  # the worker waits on it: alive until the second runner has adopted it
    env = run_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                  WORDCOUNT_WORKER_BLOCK=f"counter:{go}")
    first = start_run(str(plan), "--worker", WORDCOUNT, env=env)
    # The runner's "dispatched" line comes once the worker's gate is open; the ledger says
    # "dispatched" before that, and a runner killed then takes its gated worker with it
    # (CI, busy machine: "worker pid … is gone", a retry instead of an adoption).
    read_until(first, "dispatched counter")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    second = start_run(str(plan), "--worker", WORDCOUNT, env=env)
    seen = read_until(second, "adopted counter")
    release(go)
    seen += read_until(second, "verified counter")
    second.send_signal(signal.SIGINT)
    _, err = second.communicate(timeout=GUARD)
    assert "adopted counter (attempt 1" in seen + err.decode()
    assert calls(log)["counter"] == 1
    # The worker kept writing into the named pipe; the new runner logged it.
    output = (db.parent / "runs" / "plan" / "counter.attempt-1.log").read_text()
    assert "[worker] counter attempt 1" in output and "DONE: wrote wordcount.py" in output


def test_worker_gets_its_prompt_on_stdin_as_a_file_and_its_context_in_env(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y", "depends_on": ["x"]}])
    worker = (
        "cat > stdin.md; cp {prompt_file} file.md; pwd > where.txt; "
        'echo "$DISPATCH_KIT_TASK $DISPATCH_KIT_ATTEMPT $DISPATCH_KIT_PLAN" > env.txt; '
        "echo ok > done.txt"
    )
    result = cli("run", str(plan), "--worker", worker, "--quiet")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "ws" / "y"  # created by the runner: the plan only names it
    stdin_copy = (folder / "stdin.md").read_text()
    assert stdin_copy.startswith("[Execute] Task `y`")
    assert (folder / "file.md").read_text() == stdin_copy
    assert Path((folder / "where.txt").read_text().strip()) == folder.resolve()
    assert (folder / "env.txt").read_text().split() == ["y", "1", str(plan.resolve())]


def test_prompts_name_the_runs_own_mission_and_ledger(tmp_path, cli):
    # The dispatch line is what a harness session's hooks record by: a run of a second
    # mission in a ledger of its own must not send them to the plan's default ledger.
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    worker = "tail -n 1 > line.txt; echo ok > done.txt"
    result = cli("run", str(plan), "--worker", worker, "--db", str(tmp_path / "team.db"),
                 "--mission", "second")
    assert result.returncode == 0, result.stderr
    line = (tmp_path / "ws" / "x" / "line.txt").read_text().strip()
    ledger = tmp_path.resolve() / "team.db"  # outside the task's folder: shown whole
    assert line == f"dispatch-kit: mission=second task=x attempt=1 ledger={ledger}", line


def test_each_worker_logs_its_own_output_and_no_pipe_is_left(tmp_path, cli):
    """Each worker's output goes through a named pipe of its own (never one a finished
    worker's descendants may still hold a read end of): each log holds exactly its
    worker's output, and the run leaves no named pipe behind."""
    tasks = [{"id": "a"}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["b"]}]
    plan = small_plan(tmp_path, tasks)
    worker = 'echo "out of $DISPATCH_KIT_TASK"; echo "err of $DISPATCH_KIT_TASK" >&2; : > done.txt'
    result = cli("run", str(plan), "--worker", worker, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = tmp_path / "ws" / ".dispatch" / "runs"
    logs = {log.name.split(".")[0]: log.read_text() for log in runs.rglob("*.log")}
    assert logs == {t: f"out of {t}\nerr of {t}\n" for t in "abc"}, logs
    assert not [p.name for p in runs.rglob("*.pipe")]


# --------------------------------------------------------------------------- hostile workers


def test_hanging_worker_is_killed_at_the_timeout_with_its_children(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}], retries=1)
    pids = tmp_path / "bg.pids"
    worker = f"sleep 60 & echo $! >> {pids}; sleep 60"
    started = time.monotonic()
    result = cli("run", str(plan), "--worker", worker, "--timeout", "1s", "--wip", "2",
                 "--format", "json")
    took = time.monotonic() - started
    assert result.returncode == 1
    # 2 attempts of 1 s each, two at a time: far below the 60 s the workers would take,
    # with room for a busy machine
    assert took < 40, took
    report = json.loads(result.stdout)
    assert [(t["status"], t["attempts"]) for t in report["tasks"]] == [("failed", 2)] * 2
    assert result.stderr.count("timeout x: worker stopped after 1.00s") == 2
    assert all(gone(int(pid)) for pid in pids.read_text().split())  # the grandchildren too
    prompt = (tmp_path / "ws" / ".dispatch" / "runs" / "plan" / "x.attempt-2.prompt.md")
    assert "stopped at its time limit" in prompt.read_text()


def test_crashing_worker_is_retried_with_what_happened(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y", "depends_on": ["x"]}], retries=2)
    worker = 'if [ "$DISPATCH_KIT_ATTEMPT" = 1 ]; then kill -SEGV $$; fi; echo ok > done.txt'
    result = cli("run", str(plan), "--worker", worker, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(t["id"], t["attempts"]) for t in report["tasks"]] == [("x", 2), ("y", 2)]
    prompt = (tmp_path / "ws" / ".dispatch" / "runs" / "plan" / "x.attempt-2.prompt.md")
    assert "killed by signal 11" in prompt.read_text()


def test_flooding_worker_keeps_logs_and_memory_bounded(tmp_path):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    worker = "head -c 200000000 /dev/zero | tr '\\0' x; echo ok > done.txt"
    # Measure the runner's own peak memory: a wrapper whose only child is the runner.
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call([sys.executable, '-m', 'dispatch_kit'] + sys.argv[1:],\n"
        "                       stdout=subprocess.DEVNULL)\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, "run", str(plan), "--worker", worker, "--log-limit",
         "65536", "--quiet"],
        capture_output=True, text=True, env=run_env(), timeout=120,
    )
    code, peak_kib = map(int, done.stdout.split())
    assert code == 0, done.stderr
    for task in ("x", "y"):
        log = tmp_path / "ws" / ".dispatch" / "runs" / "plan" / f"{task}.attempt-1.log"
        assert log.stat().st_size < 65536 + 200
        assert b"bytes of output omitted" in log.read_bytes()
    assert peak_kib < 150 * 1024, peak_kib  # while 400 MB went through its pipes


def test_plan_whose_tasks_all_fail_skips_dependents_and_exits_1(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "a"}, {"id": "b", "depends_on": ["a"]},
                                 {"id": "c", "depends_on": ["b"]}, {"id": "d"}], retries=1)
    result = cli("run", str(plan), "--worker", "true", "--wip", "2", "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["state"] == "failed"
    assert {t["id"]: t["status"] for t in report["tasks"]} == {
        "a": "failed", "b": "skipped", "c": "skipped", "d": "failed"}
    assert "skipped b (depends on a)" in result.stderr
    assert "skipped c (depends on a)" in result.stderr


def test_interrupt_stops_workers_and_gives_claims_back(tmp_path):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    pids = tmp_path / "worker.pid"
    runner = start_run(str(plan), "--worker", f"echo $$ > {pids}.tmp; mv {pids}.tmp {pids}; "
                       "sleep 60", env=run_env())
    try:
        # Act once the runner has recorded the worker and the worker is running, not after
        # a delay: the "dispatched" line comes after the runner took charge of it.
        said = read_until(runner, "dispatched x")
        wait_for(pids.exists)
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=GUARD)
    finally:
        if runner.poll() is None:
            runner.kill()
    err = said.encode() + err
    assert runner.returncode == 130, err
    assert gone(int(pids.read_text()))
    conn = sqlite3.connect(tmp_path / "ws" / ".dispatch" / "ledger.db")
    assert conn.execute("SELECT state, attempt FROM tasks WHERE id = 'x'").fetchone() == (
        "ready", 1)


# --------------------------------------------------------------------------- fire and forget


def test_detach_with_nothing_ready_prints_exactly_no_reply(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y", "depends_on": ["x"]}])
    assert cli("ledger", "init", str(plan)).returncode == 0
    db = ["--db", str(tmp_path / "ws" / ".dispatch" / "ledger.db")]
    assert cli("ledger", "claim", "x", *db, "--by", "other-executor").returncode == 0
    result = cli("run", str(plan), "--worker", "true", "--detach", "--max-dispatch", "3")
    assert result.returncode == 0
    assert result.stdout == "NO_REPLY\n"


def test_detach_then_collect_finishes_the_mission(tmp_path, cli):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    go = tmp_path / "go.pipe"
    os.mkfifo(go)  # counter's worker waits on it: busy until the test lets it go
    env = run_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                  WORDCOUNT_WORKER_BLOCK=f"counter:{go}")
    db = tmp_path / "workspace" / ".dispatch" / "ledger.db"
    runs = tmp_path / "workspace" / ".dispatch" / "runs" / "plan"

    first = cli("run", str(plan), "--worker", WORDCOUNT, "--detach", "--max-dispatch", "2",
                env=env)
    assert first.returncode == 0, first.stderr
    # It returned while its worker was still busy: no exit status written yet.
    assert not (runs / "counter.attempt-1.exit.json").exists()
    assert [line.split()[1] for line in first.stdout.splitlines()] == ["counter"]
    assert db_states(db)["counter"] == "dispatched"
    release(go)
    # The supervisor writes the exit status, then ends; the sweep judges liveness by the
    # supervisor: wait for its exit, not for the file.
    line = first.stdout.split()
    wait_for_exit(int(line[line.index("pid") + 1]))
    assert (runs / "counter.attempt-1.exit.json").exists()

    swept = cli("ledger", "sweep", "--db", str(db))
    assert "collected counter" in swept.stdout and "verified counter" in swept.stdout

    second = cli("run", str(plan), "--worker", WORDCOUNT, "--detach", "--max-dispatch", "2",
                 env=env)
    assert [line.split()[1] for line in second.stdout.splitlines()] == ["tests", "guide"]
    final = cli("run", str(plan), "--worker", WORDCOUNT, "--format", "json", env=env)
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["state"] == "complete"
    assert calls(log) == Counter({"counter": 1, "tests": 1, "guide": 1, "review": 1})
    done = cli("run", str(plan), "--worker", WORDCOUNT, "--detach", env=env)
    assert done.stdout == "NO_REPLY\n"


def test_detached_worker_is_stopped_at_its_timeout_and_collected(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}], retries=1)
    first = cli("run", str(plan), "--worker", "sleep 30", "--detach", "--max-dispatch", "2",
                "--timeout", "1s")
    assert first.returncode == 0 and len(first.stdout.splitlines()) == 2
    for line in first.stdout.splitlines():  # each supervisor ends once it wrote the status
        words = line.split()
        wait_for_exit(int(words[words.index("pid") + 1]))
    exit_file = tmp_path / "ws" / ".dispatch" / "runs" / "plan" / "x.attempt-1.exit.json"
    assert json.loads(exit_file.read_text())["timed_out"] is True
    db = str(tmp_path / "ws" / ".dispatch" / "ledger.db")
    swept = cli("ledger", "sweep", "--db", db).stdout
    assert "retry x" in swept and "retry y" in swept, swept
    status = json.loads(cli("ledger", "status", "--db", db, "--format", "json").stdout)
    assert status["tasks"][0]["attempt"] == 2
    assert "stopped at its time limit" in status["tasks"][0]["error"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--wip", "0"], "--wip: bad value 0"),
        (["--timeout", "forever"], "--timeout: bad value 'forever'"),
        (["--worker", "  "], "the worker command is empty"),
    ],
)
def test_bad_run_options_are_one_line_and_exit_2(tmp_path, cli, args, needle):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    result = cli("run", str(plan), "--worker", "true", *args)
    assert result.returncode == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_changed_plan_is_refused_until_forced(tmp_path, cli):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    worker = f"echo $DISPATCH_KIT_TASK >> {tmp_path / 'calls.log'}; echo ok > done.txt"
    assert cli("run", str(plan), "--worker", worker, "--quiet").returncode == 0
    small_plan(tmp_path, [{"id": "x"}, {"id": "z"}])
    refused = cli("run", str(plan), "--worker", worker)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = cli("run", str(plan), "--worker", worker, "--force", "--format", "json")
    assert forced.returncode == 0
    assert [t["id"] for t in json.loads(forced.stdout)["tasks"]] == ["x", "z"]
    # x did not change, so it stayed verified; only the new task ran.
    assert (tmp_path / "calls.log").read_text().split() == ["x", "y", "z"]
