"""The ledger on PostgreSQL, many processes at once: what only a shared server must hold.

The semantics of each call are the contract suite's (tests/test_ledger_contract.py, both
backends); here, real processes race on a real server (tests/pg_server.py): sixteen
claimers on one mission of 2,000 items with one of them killed holding a claim, runners
killed while their worker lives, detached workers, and ``events --follow`` woken by
``NOTIFY``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, cli_env
from test_runner import (
    GUARD,
    WORDCOUNT,
    calls,
    copy_example,
    read_until,
    release,
    small_plan,
    wait_for_exit,
)

from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Criterion, Plan, Task

try:
    import psycopg
except ImportError:  # the test extra installs it; under CI its absence is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("psycopg not installed (pip install -e '.[test]')", allow_module_level=True)

RACER = ROOT / "tests" / "ledger_racer.py"


def read_line(proc: subprocess.Popen, timeout: float = GUARD) -> str:
    """The next line ``proc`` prints; waits for it (a guard, not an expected delay)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError("no line in time")
    return proc.stdout.readline().decode()


def big_plan(tmp_path: Path, n: int) -> Plan:
    crit = (Criterion(kind="file_exists", path="done.txt"),)
    tasks = tuple(Task(id=f"item-{i:04d}", title=f"Item {i}", type="coding", cwd=f"i/{i}",
                       exit_criteria=crit, max_retries=2) for i in range(n))
    return Plan(goal="Race", workspace=tmp_path, tasks=tasks, path=str(tmp_path / "race.yaml"))


def test_sixteen_racers_take_2000_items_once_and_a_killed_holder_is_swept_after_its_lease(
        tmp_path, pg_url):
    n = 2000
    with Ledger.open(pg_url, create=True) as ledger:
        ledger.init_mission(big_plan(tmp_path, n), max_tasks=n)
    env = cli_env()
    victim = subprocess.Popen([sys.executable, str(RACER), pg_url, "race", "victim", "1.0",
                               "--hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=env)
    held = read_line(victim).split()[1]  # it holds a claim mid-attempt ...
    victim.send_signal(signal.SIGKILL)  # ... and dies without a word
    victim.wait()
    gate = tmp_path / "gate"  # each racer waits there after its first claim for a second
    gate.mkdir()
    racers = [subprocess.Popen([sys.executable, str(RACER), pg_url, "race", f"r{k}", "60",
                                "--gate", str(gate)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
              for k in range(16)]
    outcomes: Counter = Counter()
    swept: list[str] = []
    per_racer = []
    for proc in racers:
        out, err = proc.communicate(timeout=GUARD)
        assert proc.returncode == 0, err.decode()[-2000:]
        lines = out.decode().split("\n")
        done = [line.split() for line in lines if line and not line.startswith("swept")]
        swept += [line for line in lines if line.startswith("swept")]
        per_racer.append(len(done))
        outcomes.update(task for task, outcome in done if outcome == "verified")
    assert len(outcomes) == n and set(outcomes.values()) == {1}  # every item once, none twice
    assert sum(1 for count in per_racer if count) > 1  # they really raced
    assert swept == [f"swept {held} collected"]  # one sweeper freed it, once
    conn = psycopg.connect(pg_url)
    attempts = conn.execute("SELECT task_id, outcome FROM attempts ORDER BY id").fetchall()
    assert len(attempts) == n + 1  # nothing lost, nothing redone but the killed attempt
    assert [o for t, o in attempts if t == held] == ["lost", "verified"]
    assert {o for t, o in attempts if t != held} == {"verified"}
    verified = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'verified'").fetchone()[0]
    assert verified == n
    assert conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'finished'").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_runs_on_postgres_finish_the_mission_and_a_rerun_redoes_nothing(tmp_path, cli, pg_url):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    env = cli_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass")
    first = cli("run", str(plan), "--db", pg_url, "--worker", WORDCOUNT, "--wip", "2",
                "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["state"] == "complete" and report["counts"]["verified"] == 4
    assert "***" not in report["ledger"] and report["ledger"].startswith("postgresql://")
    assert (tmp_path / "workspace" / ".dispatch" / "runs" / "plan").is_dir()
    shared = cli_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                     DISPATCH_KIT_LEDGER=pg_url)
    again = cli("run", str(plan), "--worker", WORDCOUNT, "--quiet", env=shared)
    assert again.returncode == 0 and again.stderr == ""
    assert calls(log) == Counter({"counter": 1, "tests": 1, "guide": 1, "review": 1})
    status = cli("ledger", "status", "--format", "json", env=shared)
    assert json.loads(status.stdout)["state"] == "complete"


def test_a_failing_task_is_retried_then_failed_and_its_dependents_skipped(tmp_path, cli,
                                                                          pg_url):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y", "depends_on": ["x"]}], retries=1)
    result = cli("run", str(plan), "--db", pg_url, "--worker", "exit 3", "--format", "json")
    assert result.returncode == 1, result.stderr
    report = {t["id"]: t for t in json.loads(result.stdout)["tasks"]}
    assert report["x"]["state"] == "failed" and report["x"]["attempts"] == 2
    assert report["y"]["state"] == "skipped"


def test_runner_killed_while_its_worker_lives_the_next_one_adopts_and_never_restarts(
        tmp_path, pg_url):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    go = tmp_path / "go.pipe"
    os.mkfifo(go)  # the worker waits on it: alive until the second runner has adopted it
    env = cli_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                  WORDCOUNT_WORKER_BLOCK=f"counter:{go}")
    argv = [sys.executable, "-m", "dispatch_kit", "run", str(plan), "--db", pg_url,
            "--worker", WORDCOUNT]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    read_until(first, "dispatched counter")
    first.send_signal(signal.SIGKILL)  # its worker keeps running, in its own group
    first.communicate()
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen = read_until(second, "adopted counter")
    release(go)
    seen += read_until(second, "verified counter")
    second.send_signal(signal.SIGINT)
    second.communicate(timeout=GUARD)
    assert "adopted counter (attempt 1" in seen
    assert calls(log)["counter"] == 1  # the task was never started a second time
    with Ledger.open(pg_url) as ledger:
        tries = [e for e in ledger.events("plan", task_id="counter") if e["kind"] == "claimed"]
    assert len(tries) == 1


def test_detach_then_sweep_collects_on_postgres(tmp_path, cli, pg_url):
    plan = copy_example(tmp_path)
    log = tmp_path / "calls.log"
    env = cli_env(WORDCOUNT_WORKER_LOG=str(log), WORDCOUNT_WORKER_MODE="pass",
                  DISPATCH_KIT_LEDGER=pg_url)
    first = cli("run", str(plan), "--worker", WORDCOUNT, "--detach", env=env)
    assert first.returncode == 0, first.stderr
    line = first.stdout.split()
    assert line[1] == "counter"
    # The supervisor (not our child: it runs in a session of its own) ends once it wrote
    # its worker's exit status: wait for that exit itself.
    wait_for_exit(int(line[line.index("pid") + 1]))
    swept = cli("ledger", "sweep", env=env)
    assert "collected counter" in swept.stdout and "verified counter" in swept.stdout
    final = cli("run", str(plan), "--worker", WORDCOUNT, "--format", "json", env=env)
    assert final.returncode == 0 and json.loads(final.stdout)["state"] == "complete"
    assert cli("run", str(plan), "--worker", WORDCOUNT, "--detach", env=env).stdout == \
        "NO_REPLY\n"


def test_events_follow_wakes_on_notify(tmp_path, cli, pg_url):
    plan = small_plan(tmp_path, [{"id": "x"}, {"id": "y"}])
    assert cli("ledger", "init", str(plan), "--db", pg_url).returncode == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "dispatch_kit", "ledger", "events", "--db", pg_url, "--follow",
         "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    try:
        assert json.loads(read_line(follower))["kind"] == "init"
        with Ledger.open(pg_url) as ledger:
            for task in ("x", "y"):
                assert ledger.claim("plan", task, "me", 60).ok
                event = json.loads(read_line(follower))
                assert (event["kind"], event["task_id"]) == ("claimed", task)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=GUARD)
    assert follower.returncode == 0


def test_a_wrong_url_is_one_line_exit_2_and_never_shows_the_password(cli, postgres_cluster):
    url = postgres_cluster.url("nosuchdb").replace("postgres@", "postgres:s3cret@")
    result = cli("ledger", "status", "--db", url)
    assert result.returncode == 2 and "cannot connect to the ledger database" in result.stderr
    assert "s3cret" not in result.output and len(result.stderr.strip().splitlines()) == 1
    empty = cli("ledger", "next", "--db", postgres_cluster.url())
    assert empty.returncode == 2 and "no ledger in this database" in empty.stderr


def test_a_claim_from_another_host_is_judged_by_its_lease_alone(pg_url, tmp_path):
    """A claim from another host names a pid this host cannot see: only its lease counts."""
    with Ledger.open(pg_url, create=True) as ledger:
        ledger.init_mission(big_plan(tmp_path, 1), max_tasks=1)
        claim = ledger.claim("race", "item-0000", "far-away", 30, holder_pid=os.getpid())
        ledger.conn.execute("UPDATE claims SET host = 'elsewhere'")
        assert ledger.sweep("race", now=claim.lease_expires - 1) == []
        assert [a.action for a in ledger.sweep("race", now=claim.lease_expires + 1)] == [
            "released"]


@pytest.mark.parametrize("table", ["tasks", "events"])
def test_one_schema_definition_gives_both_engines_the_same_columns(tmp_path, pg_url, table):
    sqlite_cols = []
    with Ledger.open(tmp_path / "l.db", create=True) as ledger:
        sqlite_cols = [r[1] for r in ledger.conn.execute(f"PRAGMA table_info({table})")]
    with Ledger.open(pg_url, create=True) as ledger:
        pg_cols = [r[0] for r in ledger.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position", (table,))]
    assert sqlite_cols == pg_cols


def test_four_runners_sharing_one_mission_run_every_task_once(tmp_path, pg_url):
    """Runners racing for one mission: a runner that lost a race claims before it starts a
    worker (``claim_next``), so no task's worker ever runs twice.

    Each runner runs one worker at a time, and a worker waits (a guard of a minute) until a
    second worker has started: so a second runner has claimed before the first can take the
    whole mission, however the scheduler orders their start-up on a busy machine."""
    # The time limit is well above the barrier's guard, so a late runner never times out the
    # first worker: what fails then is the "shared" assertion, which names the cause.
    plan = small_plan(tmp_path, [{"id": f"t{i:02d}"} for i in range(24)], retries=0,
                      timeout=300)
    log = tmp_path / "ran.log"
    started = tmp_path / "started"
    started.mkdir()
    barrier = (f": > {started}/{{task}}; i=0; "
               f"while [ $(ls {started} | wc -l) -lt 2 ] && [ $i -lt 6000 ]; "
               f"do sleep 0.01; i=$((i+1)); done; ")
    argv = [sys.executable, "-m", "dispatch_kit", "run", str(plan), "--db", pg_url, "--quiet",
            "--max-tasks", "24", "--wip", "1",
            "--worker", barrier + f"echo {{task}} >> {log}; : > done.txt"]
    runners = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=cli_env()) for _ in range(4)]
    for proc in runners:
        out, err = proc.communicate(timeout=GUARD)
        assert proc.returncode == 0, (out.decode() + err.decode())[-3000:]
    ran = Counter(log.read_text().split())
    assert len(ran) == 24 and set(ran.values()) == {1}
    with Ledger.open(pg_url) as ledger:
        status = ledger.status("plan")
        holders = {e["actor"] for e in ledger.events("plan") if e["kind"] == "verified"}
    assert status["state"] == "complete"
    assert len(holders) > 1  # they shared the work


def test_a_garbage_schema_version_is_one_line_naming_it(tmp_path, pg_url):
    """As on SQLite: a meta table whose version is not a number is named, never a
    traceback from int() (it was read unchecked on PostgreSQL)."""
    with Ledger.open(pg_url, create=True) as ledger:
        ledger.init_mission(big_plan(tmp_path, 2), max_tasks=6)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = 'v1.x' WHERE key = 'schema_version'")
    result = subprocess.run([sys.executable, "-m", "dispatch_kit", "ledger", "status", "--db",
                             pg_url], capture_output=True, text=True, env=cli_env(),
                            timeout=GUARD)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "schema_version 'v1.x' in its meta table is not a version number" in lines[0]


VALUES = ["it's", "back\\slash", "50% ?; -- $$ E'x'", "naïve ✓", "", "a\nb", 1.5, -0.0,
          1e300, float("inf"), float("-inf"), 2**63 - 1, -(2**63), 0, True, None]


def test_values_bound_into_a_batch_come_back_exactly(pg_url):
    # Inside a write transaction statements travel as one query string with their values
    # bound on the client: quotes, backslashes, placeholders and comment markers in a value
    # stay data, and each value comes back as the type it was sent as.
    with Ledger.open(pg_url, create=True) as ledger, ledger._tx() as db:
        marks = ", ".join("?" for _ in VALUES)
        (row,) = db.execute(f"SELECT {marks}", VALUES).fetchall()
        nan = db.execute("SELECT ?", (float("nan"),)).fetchone()[0]
    assert list(row) == VALUES
    assert [type(v) for v in row] == [type(v) for v in VALUES]
    assert str(row[VALUES.index(-0.0)]) == "-0.0" and nan != nan


def test_a_savepoint_rolled_back_takes_its_held_writes_with_it(pg_url, tmp_path):
    plan = small_plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    from dispatch_kit.plan.load import load_plan

    with Ledger.open(pg_url, create=True) as ledger:
        mission = ledger.init_mission(load_plan(plan)).mission
        with ledger._tx() as db:
            db.execute("UPDATE tasks SET title = 'outer' WHERE mission_id = ? AND id = 'a'",
                       (mission,))
            with pytest.raises(RuntimeError), ledger._tx() as inner:
                inner.execute("UPDATE tasks SET title = 'inner' WHERE mission_id = ?",
                              (mission,))
                raise RuntimeError("roll the savepoint back")
        titles = {t.id: t.title for t in ledger.tasks(mission)}
    assert titles == {"a": "outer", "b": "Task b"}
