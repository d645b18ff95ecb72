"""One semantics suite for every ledger backend: the same calls, the same answers.

Each test runs against SQLite and against a real PostgreSQL server (``pg_server``), so
the two engines cannot drift apart. Time is passed as ``now=`` instead of slept through;
the database's own clock is checked once, by comparison with this machine's.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dispatch_kit.errors import InputError
from dispatch_kit.ledger import Ledger, Worker
from dispatch_kit.plan.model import Criterion, Plan, Task

T0 = 2_000_000_000.0  # a fixed "now" for the tests (2033), far from the real clock


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path) -> str:
    """Where the ledger lives: a SQLite file, or a fresh schema on the test server."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    return request.getfixturevalue("pg_url")


def make_plan(tmp_path: Path, n_independent: int = 1, retries: int = 1) -> Plan:
    """a → b → c, plus ``n_independent`` tasks d0.. with no dependencies."""
    crit = (Criterion(kind="file_exists", path="done.txt"),)

    def task(tid: str, deps: tuple[str, ...] = ()) -> Task:
        return Task(id=tid, title=f"Task {tid}", type="coding", cwd=tid, exit_criteria=crit,
                    depends_on=deps, max_retries=retries)

    tasks = (task("a"), task("b", ("a",)), task("c", ("b",)),
             *(task(f"d{i}") for i in range(n_independent)))
    return Plan(goal="Contract", workspace=tmp_path / "ws", tasks=tasks,
                path=str(tmp_path / "contract.yaml"))


@pytest.fixture
def ledger(target, tmp_path):
    with Ledger.open(target, create=True) as opened:
        opened.init_mission(make_plan(tmp_path))
        yield opened


PASS = {"passed": True, "criteria": []}
FAIL = {"passed": False, "criteria": [{"index": 0, "criterion": "file_exists: done.txt",
                                       "verdict": "fail", "message": "no such file: done.txt"}]}


def kinds(ledger: Ledger, task: str | None = None) -> list[str]:
    return [e["kind"] for e in ledger.events("contract", task_id=task)]


def test_init_is_idempotent_and_a_changed_plan_needs_force(target, tmp_path):
    with Ledger.open(target, create=True) as ledger:
        assert ledger.init_mission(make_plan(tmp_path)).action == "created"
        assert ledger.init_mission(make_plan(tmp_path)).action == "unchanged"
        with pytest.raises(InputError, match="different plan"):
            ledger.init_mission(make_plan(tmp_path, n_independent=2))
        assert ledger.init_mission(make_plan(tmp_path, 2), force=True).action == "replaced"
        assert [t.id for t in ledger.tasks("contract")] == ["a", "b", "c", "d0", "d1"]
    with Ledger.open(target) as again:  # reopening finds the same state
        assert again.mission().id == "contract"


def test_next_follows_dependencies_and_the_wip_limit(ledger):
    assert [t.id for t in ledger.next_ready("contract")] == ["a", "d0"]
    assert ledger.claim("contract", "a", "me", 60, now=T0).ok
    assert [t.id for t in ledger.next_ready("contract", wip=1)] == []
    assert [t.id for t in ledger.next_ready("contract", wip=2)] == ["d0"]
    assert ledger.in_flight("contract") == 1


def test_claim_is_exclusive_blocked_tasks_wait_and_the_lease_is_named(ledger):
    first = ledger.claim("contract", "a", "one", 600, now=T0)
    assert first.ok and first.lease_expires == T0 + 600 and first.attempt == 1
    second = ledger.claim("contract", "a", "two", 600, now=T0 + 1)
    assert (second.ok, second.reason, second.holder) == (False, "held", "one")
    blocked = ledger.claim("contract", "b", "two", 600, now=T0)
    assert blocked.reason == "blocked" and blocked.blockers == (("a", "claimed"),)
    with pytest.raises(InputError, match="unknown task 'zz'"):
        ledger.claim("contract", "zz", "two", 600)
    assert kinds(ledger, "a") == ["claimed"]


def test_record_retries_then_fails_and_skips_dependents_and_finishes(ledger):
    assert ledger.claim("contract", "a", "me", 60, now=T0).ok
    retry = ledger.record("contract", "a", FAIL, now=T0 + 1)
    assert retry.outcome == "retry" and "no such file" in retry.error
    task = ledger.task("contract", "a")
    assert (task.state, task.attempt) == ("ready", 2)
    assert ledger.claim("contract", "a", "me", 60, now=T0 + 2).ok
    failed = ledger.record("contract", "a", FAIL, now=T0 + 3)
    assert failed.outcome == "failed" and failed.skipped == ("b", "c")
    assert ledger.record("contract", "a", FAIL).outcome == "already-failed"
    assert ledger.mission().finished_at is None  # d0 is still open
    assert ledger.record("contract", "d0", PASS, now=T0 + 4).outcome == "verified"
    status = ledger.status("contract", now=T0 + 5)
    assert status["state"] == "failed" and status["counts"] == {
        "verified": 1, "failed": 1, "skipped": 2, "pending": 0}
    assert ledger.mission().finished_at == T0 + 4
    assert kinds(ledger)[-1] == "finished"


def test_a_verdict_unblocks_dependents_and_a_late_one_is_stale(ledger):
    claim = ledger.claim("contract", "a", "me", 60, now=T0)
    assert ledger.record("contract", "a", PASS, expect_attempt=claim.attempt_id).outcome == \
        "verified"
    assert [t.id for t in ledger.next_ready("contract")] == ["b", "d0"]
    again = ledger.claim("contract", "d0", "me", 60, now=T0)
    assert ledger.release("contract", "d0", reason="changed my mind")
    late = ledger.record("contract", "d0", PASS, expect_attempt=again.attempt_id)
    assert late.outcome == "stale"


def test_dispatch_release_and_holder_checks(ledger):
    with pytest.raises(InputError, match="not claimed"):
        ledger.mark_dispatched("contract", "a", "me")
    assert ledger.claim("contract", "a", "me", 60, now=T0).ok
    with pytest.raises(InputError, match="held by me, not you"):
        ledger.mark_dispatched("contract", "a", "you")
    row = ledger.mark_dispatched("contract", "a", "me", pid=4242, lease=120, now=T0 + 5)
    assert row is not None and row.state == "dispatched" and row.lease_expires == T0 + 125
    assert ledger.release("contract", "a", reason="stopped by the user")
    assert not ledger.release("contract", "a", reason="again")
    task = ledger.task("contract", "a")
    assert (task.state, task.attempt) == ("ready", 1)  # a release uses up no attempt
    assert kinds(ledger, "a") == ["claimed", "dispatched", "released"]


def test_sweep_frees_expired_leases_and_counts_a_lost_attempt(ledger):
    assert ledger.claim("contract", "d0", "ghost", 10, now=T0).ok  # never dispatched
    assert ledger.claim("contract", "a", "gone", 10, now=T0,
                        worker=Worker(pid=None, log_path="x.log")).ok  # dispatched
    assert ledger.sweep("contract", now=T0 + 5) == []  # leases still running
    actions = {a.task_id: a for a in ledger.sweep("contract", now=T0 + 11)}
    assert actions["d0"].action == "released" and "lease of ghost expired" in actions[
        "d0"].reason
    assert actions["a"].action == "collected" and actions["a"].result.outcome == "retry"
    assert ledger.task("contract", "d0").attempt == 1
    assert ledger.task("contract", "a").attempt == 2
    assert ledger.sweep("contract", now=T0 + 12) == []  # exactly once


def test_sweep_with_a_stale_threshold_and_renewed_leases(ledger):
    assert ledger.claim("contract", "a", "slow", 10, now=T0,
                        worker=Worker(pid=None)).ok
    ledger.renew("contract", "slow", {"a": T0 + 100}, now=T0 + 5)  # a heartbeat
    ledger.renew("contract", "other", {"a": T0 + 900}, now=T0 + 5)  # not its claim: ignored
    ledger.renew("contract", "slow", {"a": T0 + 50}, now=T0 + 6)  # never shortens
    assert ledger.claim_of("contract", "a").lease_expires == T0 + 100
    assert ledger.sweep("contract", now=T0 + 60) == []
    assert [a.task_id for a in ledger.sweep("contract", stale=30, now=T0 + 60)] == ["a"]


def test_renew_measures_leases_by_the_database_clock(ledger):
    """A holder's absolute expiry is stored as the same distance from the database's
    clock; with a local ledger the two clocks are one."""
    assert ledger.claim("contract", "a", "me", 1, worker=Worker(pid=None)).ok
    db_now = ledger.store.now()
    assert abs(db_now - time.time()) < 5
    ledger.renew("contract", "me", {"a": time.time() + 3600})
    expires = ledger.claim_of("contract", "a").lease_expires
    assert 3590 < expires - db_now < 3610


def test_adopt_keeps_the_attempt_and_names_the_new_holder(ledger):
    claim = ledger.claim("contract", "a", "old", 60, now=T0, worker=Worker(pid=None))
    assert not ledger.adopt("contract", "a", claim.attempt_id + 99, "new", holder_pid=None,
                            holder_start=None, reason="wrong attempt")
    assert ledger.adopt("contract", "a", claim.attempt_id, "new", holder_pid=None,
                        holder_start=None, reason="old runner died")
    row = ledger.claim_of("contract", "a")
    assert row.holder == "new" and row.attempt_id == claim.attempt_id
    assert kinds(ledger, "a")[-1] == "adopted"


def test_claim_next_takes_ready_tasks_in_plan_order_then_none(ledger):
    got = [ledger.claim_next("contract", "me", 60, now=T0) for _ in range(3)]
    assert [g.task_id for g in got[:2]] == ["a", "d0"] and got[2] is None  # b waits for a
    # The task as claimed comes with the claim, exactly as reading it again would give it.
    assert [g.task for g in got[:2]] == [ledger.task("contract", t) for t in ("a", "d0")]


def test_reset_starts_over_and_keeps_history(ledger):
    ledger.claim("contract", "a", "me", 60, now=T0)
    ledger.record("contract", "a", PASS, now=T0 + 1)
    ledger.reset_mission("contract")
    assert {t.state for t in ledger.tasks("contract")} == {"ready"}
    assert kinds(ledger)[-1] == "reset" and "verified" in kinds(ledger)


def test_event_history_is_append_only(ledger):
    ledger.claim("contract", "a", "me", 60)
    for statement in ("DELETE FROM events", "UPDATE events SET kind = 'x'"):
        with pytest.raises(Exception, match="append-only"):
            with ledger._tx() as db:
                db.execute(statement)
    assert kinds(ledger) == ["init", "claimed"]
