"""The ledger as the skills drive it: real CLI processes against a real SQLite file."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env

from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Criterion, Plan, Task

PLAN = """\
goal: Exercise the ledger
workspace: ws
defaults: {{timeout: 30, max_retries: {retries}}}
tasks:
  - id: a
    title: First step
    type: coding
    cwd: a
    exit_criteria:
      - file_exists: done.txt
  - id: b
    title: Builds on a
    type: coding
    cwd: b
    depends_on: [a]
    exit_criteria:
      - file_exists: done.txt
  - id: c
    title: Builds on b
    type: review
    cwd: c
    depends_on: [b]
    exit_criteria:
      - file_exists: done.txt
  - id: d
    title: Independent
    type: research
    cwd: d
    exit_criteria:
      - {criterion}
"""


def write_plan(tmp_path: Path, retries: int = 1, criterion: str = "file_exists: done.txt") -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(retries=retries, criterion=criterion))
    return plan


@pytest.fixture(params=["sqlite", "postgresql"])
def mission(request, tmp_path, cli):
    """A loaded 4-task mission; returns (plan path, ledger args). Every test using it runs
    on both backends: a SQLite file, and PostgreSQL (tests/pg_server.py) by URL."""
    plan = write_plan(tmp_path)
    db = str(tmp_path / "ledger.db") if request.param == "sqlite" else request.getfixturevalue(
        "pg_url")
    result = cli("ledger", "init", str(plan), "--db", db)
    assert result.returncode == 0, result.stderr
    return plan, ["--db", db]


def raw_connection(db: str):
    """A plain connection to the ledger, bypassing dispatch-kit (for tampering tests)."""
    if db.startswith("postgresql://"):
        import psycopg

        return psycopg.connect(db, autocommit=True)
    return sqlite3.connect(db)


def check_json(cli, plan: Path, task: str, out: Path) -> Path:
    """What a skill does: run the real checker for one task and save its JSON verdict."""
    result = cli("check", str(plan), "--task", task, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    out.write_text(result.stdout)
    return out


def status(cli, db_args) -> dict:
    result = cli("ledger", "status", *db_args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {t["id"]: t for t in json.loads(result.stdout)["tasks"]} | {
        "_": json.loads(result.stdout)
    }


def test_default_ledger_lives_under_the_workspace_and_is_found_from_inside_it(tmp_path, cli):
    plan = write_plan(tmp_path)
    first = cli("ledger", "init", str(plan))
    assert first.returncode == 0, first.stderr
    db = tmp_path / "ws" / ".dispatch" / "ledger.db"
    assert db.is_file()
    assert (db.parent / ".gitignore").read_text().strip().endswith("*")
    (tmp_path / "ws" / "a").mkdir(parents=True)
    found = cli("ledger", "next", "--format", "ids", cwd=tmp_path / "ws" / "a")
    assert found.stdout.split() == ["a", "d"]
    elsewhere = cli("ledger", "next", cwd=tmp_path)
    assert elsewhere.returncode == 2
    assert "no ledger found" in elsewhere.stderr and len(elsewhere.stderr.splitlines()) == 1
    by_plan = cli("ledger", "next", "--plan", str(plan), "--format", "ids", cwd=tmp_path)
    assert by_plan.stdout.split() == ["a", "d"]


def test_environment_variable_points_every_command_at_one_ledger(tmp_path, cli):
    plan = write_plan(tmp_path)
    shared = tmp_path / "state" / "mission.db"
    env = cli_env(DISPATCH_KIT_LEDGER=str(shared))
    assert cli("ledger", "init", str(plan), env=env).returncode == 0
    assert shared.is_file() and not (tmp_path / "ws" / ".dispatch").exists()
    claimed = cli("ledger", "claim", "d", "--by", "me", env=env, cwd=tmp_path)
    assert claimed.returncode == 0, claimed.stderr


def test_init_is_idempotent_and_a_changed_plan_needs_force(tmp_path, cli, mission):
    plan, db = mission
    again = cli("ledger", "init", str(plan), *db)
    assert again.returncode == 0 and "already loaded" in again.stdout

    # Verify a, so we can see --force keep it.
    (tmp_path / "ws" / "a").mkdir(parents=True)
    (tmp_path / "ws" / "a" / "done.txt").write_text("ok")
    assert cli("ledger", "claim", "a", *db, "--by", "me").returncode == 0
    verdict = check_json(cli, plan, "a", tmp_path / "a.json")
    assert cli("ledger", "record", "a", *db, "--check", str(verdict)).returncode == 0

    write_plan(tmp_path, criterion="min_bytes: {path: notes.md, bytes: 10}")
    changed = cli("ledger", "init", str(plan), *db)
    assert changed.returncode == 2
    assert len(changed.stderr.splitlines()) == 1
    assert "different plan" in changed.stderr and "--force" in changed.stderr

    forced = cli("ledger", "init", str(plan), *db, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "kept verified: a" in forced.stdout
    states = status(cli, db)
    assert states["a"]["state"] == "verified"
    assert states["d"]["state"] == "ready"


def test_next_follows_dependencies_and_the_wip_limit(cli, mission):
    _, db = mission
    assert cli("ledger", "next", *db, "--format", "ids").stdout.split() == ["a", "d"]
    assert cli("ledger", "claim", "a", *db, "--by", "w1").returncode == 0
    one = cli("ledger", "next", *db, "--wip", "1", "--format", "ids")
    assert one.returncode == 1 and one.stdout == ""
    assert "WIP limit" in one.stderr
    two = cli("ledger", "next", *db, "--wip", "2", "--format", "json")
    assert [t["id"] for t in json.loads(two.stdout)] == ["d"]
    blocked = cli("ledger", "claim", "b", *db, "--by", "w1")
    assert blocked.returncode == 1 and "waiting for a (claimed)" in blocked.stderr


def test_claim_is_exclusive_and_names_the_holder_and_lease(cli, mission):
    _, db = mission
    first = cli("ledger", "claim", "a", *db, "--by", "executor-1", "--lease", "10m")
    assert first.returncode == 0 and "claimed a (attempt 1/2)" in first.stdout
    second = cli("ledger", "claim", "a", *db, "--by", "executor-2", "--lease", "10m")
    assert second.returncode == 1
    assert "held by executor-1 until 20" in second.stderr


def test_record_retries_with_the_error_then_fails_and_skips_dependents(tmp_path, cli, mission):
    plan, db = mission
    (tmp_path / "ws" / "a").mkdir(parents=True)
    verdict = check_json(cli, plan, "a", tmp_path / "a.json")  # done.txt missing: it fails
    assert cli("ledger", "claim", "a", *db, "--by", "me").returncode == 0
    assert cli("ledger", "dispatch", "a", *db, "--by", "me").returncode == 0
    first = cli("ledger", "record", "a", *db, "--check", str(verdict), "--format", "json")
    assert first.returncode == 0
    assert json.loads(first.stdout)["outcome"] == "retry"
    states = status(cli, db)
    assert states["a"]["state"] == "ready" and states["a"]["attempt"] == 2
    assert "no such file: done.txt" in states["a"]["error"]

    assert cli("ledger", "claim", "a", *db, "--by", "me").returncode == 0
    last = cli("ledger", "record", "a", *db, "--check", str(verdict))
    assert last.returncode == 0
    assert "failed a after 2 attempts" in last.stdout and "skipped b, c" in last.stdout
    states = status(cli, db)
    assert [states[t]["status"] for t in "abcd"] == ["failed", "skipped", "skipped", "pending"]
    assert states["c"]["skipped_because"] == "a"  # the failure that cut it off
    again = cli("ledger", "record", "a", *db, "--check", str(verdict))
    assert again.returncode == 1 and "already failed" in again.stdout


def test_record_passes_verify_and_unblock_dependents(tmp_path, cli, mission):
    plan, db = mission
    (tmp_path / "ws" / "a").mkdir(parents=True)
    (tmp_path / "ws" / "a" / "done.txt").write_text("ok")
    cli("ledger", "claim", "a", *db, "--by", "me")
    verdict = check_json(cli, plan, "a", tmp_path / "a.json")
    result = cli("ledger", "record", "a", *db, "--check", str(verdict))
    assert result.returncode == 0 and "verified a" in result.stdout
    assert cli("ledger", "next", *db, "--format", "ids").stdout.split() == ["b", "d"]
    report = cli("ledger", "status", *db)
    assert "1 verified" in report.stdout and "3 pending" in report.stdout


def test_status_stops_naming_a_dependency_once_it_is_verified(tmp_path, cli, mission):
    """After a context reset the orchestrator reads `ledger status` to pick the next task:
    a task whose dependency passed must read as ready, not as waiting for it."""
    plan, db = mission
    lines = {line.split()[1]: line for line in cli("ledger", "status", *db).stdout.splitlines()
             if line.startswith("  ")}
    assert lines["b"].endswith("waiting for a") and lines["c"].endswith("waiting for b")
    (tmp_path / "ws" / "a").mkdir(parents=True)
    (tmp_path / "ws" / "a" / "done.txt").write_text("ok")
    cli("ledger", "claim", "a", *db, "--by", "me")
    verdict = check_json(cli, plan, "a", tmp_path / "a.json")
    cli("ledger", "record", "a", *db, "--check", str(verdict))
    lines = {line.split()[1]: line for line in cli("ledger", "status", *db).stdout.splitlines()
             if line.startswith("  ")}
    assert lines["b"].endswith("ready"), lines["b"]
    assert lines["c"].endswith("waiting for b"), lines["c"]
    tasks = status(cli, db)
    assert tasks["b"]["waiting_on"] == [] and tasks["c"]["waiting_on"] == ["b"]
    markdown = cli("ledger", "status", *db, "--format", "markdown").stdout
    assert "waiting for a" not in markdown


def test_sweep_frees_expired_leases_and_collects_dead_workers(tmp_path, cli, mission):
    plan, db = mission
    # An expired lease on a task never dispatched: back to ready, no attempt used.
    assert cli("ledger", "claim", "d", *db, "--by", "ghost", "--lease", "0.3s").returncode == 0
    # A dispatched task whose worker exited after doing its job: collected as verified.
    assert cli("ledger", "claim", "a", *db, "--by", "executor").returncode == 0
    worker = subprocess.Popen(["sh", "-c", "mkdir -p ws/a && echo ok > ws/a/done.txt"],
                              cwd=tmp_path)
    worker.wait()
    assert cli("ledger", "dispatch", "a", *db, "--by", "executor", "--pid",
               str(worker.pid)).returncode == 0
    time.sleep(0.4)
    swept = cli("ledger", "sweep", *db, "--format", "json")
    assert swept.returncode == 0, swept.stderr
    actions = {a["id"]: a for a in json.loads(swept.stdout)}
    assert actions["d"]["action"] == "released" and "lease of ghost expired" in actions["d"][
        "reason"]
    assert actions["a"]["action"] == "collected" and actions["a"]["outcome"] == "verified"
    assert f"worker pid {worker.pid}" in actions["a"]["reason"]
    states = status(cli, db)
    assert states["d"]["state"] == "ready" and states["d"]["attempt"] == 1
    assert states["a"]["state"] == "verified"
    events = cli("ledger", "events", *db, "--task", "d", "--format", "json")
    kinds = [(e["kind"], e["detail"].get("reason", "")) for e in json.loads(events.stdout)]
    assert kinds[-1][0] == "released" and "expired" in kinds[-1][1]
    assert cli("ledger", "sweep", *db).stdout.strip() == "ledger: no stale claims"


def test_sweep_with_stale_threshold_counts_a_lost_attempt(tmp_path, cli, mission):
    _, db = mission
    cli("ledger", "claim", "a", *db, "--by", "executor", "--lease", "1h")
    cli("ledger", "dispatch", "a", *db, "--by", "executor")
    kept = cli("ledger", "sweep", *db, "--stale", "1h")
    assert "no stale claims" in kept.stdout
    time.sleep(0.2)
    swept = cli("ledger", "sweep", *db, "--stale", "0.1s")
    assert "collected a: held by executor" in swept.stdout and "retry a" in swept.stdout
    assert status(cli, db)["a"]["attempt"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["claim", "nope", "--by", "x"], "unknown task 'nope'"),
        (["claim", "a", "--by", "x", "--lease", "10x"], "--lease: bad value '10x'"),
        (["sweep", "--stale", "soon"], "--stale: bad value 'soon'"),
        (["dispatch", "a", "--by", "x"], "not claimed"),
        (["status", "--mission", "other"], "no mission 'other'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, mission, args, needle):
    _, db = mission
    result = cli("ledger", *args, *db)
    assert result.returncode == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_corrupt_and_foreign_databases_are_rejected(tmp_path, cli, mission):
    plan, _ = mission
    missing = cli("ledger", "status", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "no ledger here" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    for args in (["status", "--db", str(corrupt)], ["init", str(plan), "--db", str(corrupt)]):
        result = cli("ledger", *args)
        assert result.returncode == 2 and "not a usable dispatch-kit ledger" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE x (y)").connection.commit()
    result = cli("ledger", "next", "--db", str(foreign))
    assert result.returncode == 2 and "not a dispatch-kit ledger" in result.stderr
    bad_check = tmp_path / "bad.json"
    bad_check.write_text("{not json")
    result = cli("ledger", "record", "a", "--db", str(tmp_path / "ledger.db"), "--check",
                 str(bad_check))
    assert result.returncode == 2 and "invalid JSON" in result.stderr


def test_event_history_is_append_only(cli, mission):
    _, db = mission
    cli("ledger", "claim", "a", *db, "--by", "me")
    conn = raw_connection(db[1])
    for statement in ("DELETE FROM events", "UPDATE events SET kind = 'x'"):
        with pytest.raises(Exception, match="append-only") as raised:
            conn.execute(statement)
        assert type(raised.value).__name__ in ("IntegrityError", "RaiseException")
    assert [r[0] for r in conn.execute("SELECT kind FROM events ORDER BY seq")] == [
        "init", "claimed"]


def test_eight_racing_claimers_take_each_of_1000_items_exactly_once(tmp_path):
    criteria = (Criterion(kind="file_exists", path="done.txt"),)
    tasks = tuple(
        Task(id=f"item-{i:04d}", title=f"Item {i}", type="coding", cwd=f"items/{i}",
             exit_criteria=criteria)
        for i in range(1000)
    )
    plan = Plan(goal="Race", workspace=tmp_path, tasks=tasks, path=str(tmp_path / "race.yaml"))
    db = tmp_path / "race.db"
    with Ledger.open(db, create=True) as ledger:
        ledger.init_mission(plan, max_tasks=1000)
    ids = [t.id for t in tasks]
    # Two gates, each a shell loop on files. At the start line each claimer waits until all
    # eight are waiting; then each claims one item (its first free one, in its own order)
    # and waits at a second gate until all eight hold one; then all claim the rest. So all
    # eight really race, whatever the machine's scheduling: none can take every item first.
    gate = tmp_path / "gate"
    gate.mkdir()
    claimer = """
g=$0 db=$1 by=$2; shift 2
claim() { "$PY" -m dispatch_kit ledger claim --db "$db" --by "$by" --lease 1h "$@"; }
touch "$g.ready"; while [ ! -e "$g.go" ]; do sleep 0.01; done
for id; do claim "$id"; [ $? -eq 1 ] || break; done
touch "$g.one"; while [ ! -e "$g.rest" ]; do sleep 0.01; done
claim "$@"
"""

    def all_at(suffix: str) -> None:
        deadline = time.monotonic() + 120  # a guard: each step takes well under a second
        while len(list(gate.glob(f"*.{suffix}"))) < 8:
            assert time.monotonic() < deadline, f"not all eight claimers reached {suffix}"
            time.sleep(0.01)

    procs = []
    for n in range(8):
        order = ids[:]
        random.Random(n).shuffle(order)
        procs.append(subprocess.Popen(
            ["sh", "-c", claimer, str(gate / str(n)), str(db), f"claimer-{n}", *order],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=cli_env(PY=sys.executable),
        ))
    all_at("ready")
    for n in range(8):
        (gate / f"{n}.go").touch()
    all_at("one")
    for n in range(8):
        (gate / f"{n}.rest").touch()
    outputs = [(p.communicate(timeout=120), p.returncode) for p in procs]
    won: list[str] = []
    for (out, err), code in outputs:
        assert b"Traceback" not in err and b"locked" not in err, err[-500:]
        assert code in (0, 1)
        won += [line.split()[1] for line in out.decode().splitlines()]
    assert sorted(won) == ids  # every item once, none twice
    conn = sqlite3.connect(db)
    holders = dict(conn.execute("SELECT task_id, holder FROM claims").fetchall())
    assert len(holders) == 1000
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1000
    assert len(set(holders.values())) == 8  # they really raced: each won at least one


# --- a file that is not a whole ledger (issue 13): one specific line, exit 2, untouched -----

def _sqlite_file(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


META = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
NOT_LEDGERS = {
    "another program's": (
        lambda p: _sqlite_file(p, "CREATE TABLE notes (body TEXT)"),
        "not a dispatch-kit ledger (no meta table)"),
    "meta without a version": (
        lambda p: _sqlite_file(p, META),
        "not a dispatch-kit ledger (no schema_version in its meta table)"),
    "a garbage version": (
        lambda p: _sqlite_file(p, META, "INSERT INTO meta VALUES ('schema_version', 'v1.x')"),
        "not a dispatch-kit ledger (schema_version 'v1.x' in its meta table is not a version "
        "number)"),
    "another meta layout": (
        lambda p: _sqlite_file(p, "CREATE TABLE meta (name TEXT)"),
        "not a dispatch-kit ledger (its meta table has another layout: no such column: value)"),
    "tables missing": (
        lambda p: _sqlite_file(p, META, "INSERT INTO meta VALUES ('schema_version', '1')",
                               "CREATE TABLE tasks (x)"),
        "a damaged dispatch-kit ledger: tables attempts, claims, deps, events, missions missing"),
    "random bytes": (
        lambda p: p.write_bytes(random.Random(13).randbytes(4096)),
        "not a usable dispatch-kit ledger (not an SQLite database file)"),
}


@pytest.mark.parametrize("kind", NOT_LEDGERS)
def test_a_file_that_is_not_a_whole_ledger_is_named_and_left_alone(tmp_path, cli, kind):
    plan = write_plan(tmp_path)
    db = tmp_path / "ledger.db"
    make, message = NOT_LEDGERS[kind]
    make(db)
    before = db.read_bytes()
    for args in (["ledger", "status"], ["ledger", "events"], ["ledger", "init", str(plan)],
                 ["run", str(plan), "--worker", "true"]):
        result = cli(*args, "--db", str(db))
        assert (result.returncode, result.stderr) == (2, f"{db}: {message}\n"), args
        assert db.read_bytes() == before, f"{args} wrote into {kind} file"


def test_a_ledger_table_with_other_columns_is_named_before_any_query(tmp_path, cli):
    plan = write_plan(tmp_path)
    db = tmp_path / "ledger.db"
    assert cli("ledger", "init", str(plan), "--db", str(db)).returncode == 0
    _sqlite_file(db, "DROP TABLE claims", "CREATE TABLE claims (x)")
    for args in (["ledger", "status"], ["ledger", "events"],
                 ["run", str(plan), "--worker", "true"]):
        result = cli(*args, "--db", str(db))
        assert result.returncode == 2 and result.stderr == (
            f"{db}: a damaged dispatch-kit ledger: table claims has no column attempt_id, "
            "claimed_at, holder, holder_pid, holder_start, ...\n"), result.stderr


def test_an_empty_file_is_no_ledger_to_read_but_one_can_start_there(tmp_path, cli):
    plan = write_plan(tmp_path)
    db = tmp_path / "ledger.db"
    db.touch()
    result = cli("ledger", "status", "--db", str(db))
    assert (result.returncode, result.stderr) == (
        2, f"{db}: not a dispatch-kit ledger (an empty SQLite database: no meta table); "
           "create one with `dispatch-kit ledger init PLAN`\n")
    assert cli("ledger", "init", str(plan), "--db", str(db)).returncode == 0
    assert cli("ledger", "status", "--db", str(db)).returncode == 0


# --------------------------------------------------------------------------- events --follow


def _follow_sqlite(tmp_path, cli, monkeypatch, capsys, on_wait) -> list[str]:
    """Run ``ledger events --follow`` in this process on a SQLite ledger; ``on_wait(n,
    ledger)`` runs before its n-th wait. After the fourth wait it stops (as on SIGINT).
    Returns the event kinds it printed."""
    import signal

    from dispatch_kit.cli import ledger as cli_ledger
    from dispatch_kit.cli import main
    from dispatch_kit.ledger.backends.sqlite import SqliteStore

    db = str(tmp_path / "ledger.db")
    assert cli("ledger", "init", str(write_plan(tmp_path)), "--db", db).returncode == 0
    monkeypatch.setattr(cli_ledger, "FOLLOW_WAKE_S", 0.05)
    waits = []
    real_wait = SqliteStore.wait_for_events

    def wait(self, timeout):
        waits.append(timeout)
        if len(waits) > 4:
            raise KeyboardInterrupt
        with Ledger.open(db) as other:
            on_wait(len(waits), other)
        return real_wait(self, timeout)

    monkeypatch.setattr(SqliteStore, "wait_for_events", wait)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["ledger", "events", "--db", db, "--follow"]) == 0
    finally:
        signal.signal(signal.SIGTERM, handler)
    return [line.split()[1] for line in capsys.readouterr().out.splitlines()]


def test_events_follow_sees_a_commit_landing_before_its_first_wait(tmp_path, cli,
                                                                     monkeypatch, capsys):
    """The history is read and printed, then a claim commits, then the follower first
    waits: that claim is no change after the first wait's stamp, yet it must be shown."""

    def claim_first(n, other):
        if n == 1:
            assert other.claim("plan", "a", "me", 60).ok

    assert _follow_sqlite(tmp_path, cli, monkeypatch, capsys, claim_first) == [
        "init", "claimed"]


def test_events_follow_looks_again_when_it_wakes_on_its_timeout(tmp_path, cli, monkeypatch,
                                                                capsys):
    """A commit the files' stamp does not show (a WAL rewritten in place within one clock
    tick): the follower still reads it within FOLLOW_WAKE_S."""
    from dispatch_kit.ledger.backends.sqlite import SqliteStore

    monkeypatch.setattr(SqliteStore, "_files_stamp", lambda self: ())

    def claim_second(n, other):
        if n == 2:
            assert other.claim("plan", "a", "me", 60).ok

    assert _follow_sqlite(tmp_path, cli, monkeypatch, capsys, claim_second) == [
        "init", "claimed"]
