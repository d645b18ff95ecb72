"""Claims and leases: who may work on a task, and for how long.

A claim is the ledger's promise that one task runs once; the lease bounds how long a
holder that vanished can keep it, and a release gives back an attempt that never ran.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.connection import Db, together
from dispatch_kit.ledger.queries import (
    BLOCKERS_SQL,
    TASK_COLS,
    TASK_STATE_SQL,
    Queries,
)
from dispatch_kit.ledger.rows import ClaimResult, ClaimRow, TaskRow, Worker, iso, mapping
from dispatch_kit.ledger.schema import IN_FLIGHT
from dispatch_kit.procs.groups import hostname


class Claims:
    """The ``claim``, ``dispatch``, ``renew``, ``adopt`` and ``release`` transactions.

    Given the database and the shared queries (the task row each claim decides from),
    so the sweeper can release claims without being a kind of claim itself.
    """

    def __init__(self, db: Db, queries: Queries) -> None:
        self.db = db
        self.queries = queries

    def _held_by(self, task_id: str, actual: str, holder: str) -> InputError:
        """Only the holder may act on its claim; the error names both so a skill can tell."""
        return InputError(f"task {task_id!r} is held by {actual}, not {holder}",
                          path=self.db.where)

    @staticmethod
    def _attempt_number(db: Any, attempt_id: int) -> int:
        """The 1-based attempt number events carry (claims keep only the attempt's row id)."""
        return db.execute("SELECT number FROM attempts WHERE id = ?", (attempt_id,)).fetchone()[0]

    def claim(
        self,
        mission_id: str,
        task_id: str,
        holder: str,
        lease: float,
        *,
        holder_pid: int | None = None,
        holder_start: str | None = None,
        worker: Worker | None = None,
        expect_attempt: int | None = None,
        now: float | None = None,
    ) -> ClaimResult:
        """ready → claimed, atomically; otherwise say who holds it or what it waits for.

        With ``worker`` (a process already started but held back until this
        commits) the task goes straight to dispatched in the same transaction;
        ``expect_attempt`` makes the claim fail if the attempt moved on meanwhile.
        """
        with self.db.tx() as db:
            # The task row (locked) and what it still waits for.
            (state, blockers), attempt_id = self._first_reads(
                db, (TASK_STATE_SQL + self.db.store.for_update, (mission_id, task_id)),
                (BLOCKERS_SQL, (mission_id, task_id)))
            row = state.fetchone()
            if row is None:
                raise self.queries.unknown_task(mission_id, task_id)
            now = self.db.now(now)  # after the first statement: read with its BEGIN
            return self._claim_row(db, mission_id, task_id, row, holder, lease,
                                   holder_pid=holder_pid, holder_start=holder_start,
                                   worker=worker, expect_attempt=expect_attempt, now=now,
                                   blockers=blockers.fetchall(), attempt_id=attempt_id)

    def claim_next(
        self,
        mission_id: str,
        holder: str,
        lease: float,
        *,
        holder_pid: int | None = None,
        holder_start: str | None = None,
        worker: Worker | None = None,
        now: float | None = None,
    ) -> ClaimResult | None:
        """Claim the first ready task (plan order, dependencies verified); None if none is.

        Racers do not queue behind each other: on a backend with row locks each
        passes over the task rows another transaction holds (``SKIP LOCKED``), so
        N claimers take N different tasks at once.
        """
        with self.db.tx() as db:
            (first,), attempt_id = self._first_reads(db, (
                f"SELECT {TASK_COLS} FROM tasks t "
                "WHERE t.mission_id = ? AND t.state = 'ready' AND NOT EXISTS (SELECT 1 FROM "
                "deps d JOIN tasks u ON u.mission_id = d.mission_id AND u.id = d.dep_id "
                "WHERE d.mission_id = t.mission_id AND d.task_id = t.id "
                "AND u.state != 'verified') ORDER BY t.seq LIMIT 1" + self.db.store.skip_locked,
                (mission_id,),
            ))
            row = first.fetchone()
            if row is None:
                return None
            now = self.db.now(now)  # after the first statement: read with its BEGIN
            result = self._claim_row(db, mission_id, row["id"], row, holder, lease,
                                     holder_pid=holder_pid, holder_start=holder_start,
                                     worker=worker, expect_attempt=None, now=now,
                                     blockers=[], attempt_id=attempt_id)
        if not result.ok:
            return result
        # The row as ``task`` would now read it, so a runner need not read it again.
        task = TaskRow(**{**mapping(row), "state": "dispatched" if worker else "claimed",
                          "started_at": row["started_at"] if row["started_at"] is not None
                          else now})
        return replace(result, task=task)

    def _first_reads(self, db: Any, *statements: tuple[str, Sequence[Any]]
                     ) -> tuple[list[Any], int | None]:
        """A claim's first reads, in one round trip with the BEGIN where the backend has
        round trips, and the next attempt's id where the backend draws it ahead
        (``store.next_attempt_id``; unused when nothing is claimed: a gap), else None (the
        attempt's INSERT returns it)."""
        draw = self.db.store.next_attempt_id
        if not draw:
            return together(db, *statements), None
        *results, drawn = together(db, *statements, (draw, ()))
        return results, int(drawn.fetchone()[0])

    def _claim_row(self, db: Any, mission_id: str, task_id: str, row: Any, holder: str,
                   lease: float, *, holder_pid: int | None, holder_start: str | None,
                   worker: Worker | None, expect_attempt: int | None,
                   now: float, blockers: list[Any], attempt_id: int | None) -> ClaimResult:
        """The claim itself, on a task row the caller read (and locked) in ``db``, with the
        dependencies not verified yet (``blockers``, read after the lock) and the new
        attempt's id when the backend allocates it ahead (else the INSERT returns it)."""
        max_attempts = 1 + row["max_retries"]
        if row["state"] in IN_FLIGHT:
            held = db.execute(
                "SELECT holder, lease_expires FROM claims WHERE mission_id = ? AND task_id = ?",
                (mission_id, task_id),
            ).fetchone()
            return ClaimResult(
                False, task_id, "held",
                holder=held["holder"] if held else "?",
                lease_expires=held["lease_expires"] if held else None,
                attempt=row["attempt"], max_attempts=max_attempts,
            )
        if row["state"] != "ready":
            return ClaimResult(False, task_id, row["state"], attempt=row["attempt"],
                               max_attempts=max_attempts)
        if expect_attempt is not None and row["attempt"] != expect_attempt:
            return ClaimResult(False, task_id, f"at attempt {row['attempt']}",
                               attempt=row["attempt"], max_attempts=max_attempts)
        if blockers:
            return ClaimResult(
                False, task_id, "blocked", attempt=row["attempt"], max_attempts=max_attempts,
                blockers=tuple((b["id"], b["state"]) for b in blockers),
            )
        host = hostname()
        w = worker or Worker()
        values = (mission_id, task_id, row["attempt"], holder, host, now,
                  now if worker else None, w.pid, w.log_path, w.prompt_path)
        if attempt_id is not None:  # allocated ahead: the INSERT waits for the COMMIT
            db.execute("INSERT INTO attempts (id, mission_id, task_id, number, holder, host, "
                       "claimed_at, dispatched_at, pid, log_path, prompt_path) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (attempt_id, *values))
        else:
            attempt_id = int(db.execute(
                "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
                "dispatched_at, pid, log_path, prompt_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id", values,
            ).fetchone()[0])
        expires = now + lease
        db.execute(
            "INSERT INTO claims (mission_id, task_id, attempt_id, holder, holder_pid, "
            "holder_start, host, claimed_at, lease_expires, pid, pid_start) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mission_id, task_id, attempt_id, holder, holder_pid, holder_start, host, now,
             expires, w.pid, w.pid_start),
        )
        db.execute(
            "UPDATE tasks SET state = ?, started_at = COALESCE(started_at, ?), "
            "updated_at = ? WHERE mission_id = ? AND id = ?",
            ("dispatched" if worker else "claimed", now, now, mission_id, task_id),
        )
        db.execute(
            "UPDATE missions SET started_at = ?, updated_at = ? "
            "WHERE id = ? AND started_at IS NULL",
            (now, now, mission_id),
        )
        self.db.event(db, mission_id, task_id, "claimed", attempt=row["attempt"], actor=holder,
                      at=now, lease_expires=iso(expires), holder_pid=holder_pid, host=host)
        if worker:
            self.db.event(db, mission_id, task_id, "dispatched", attempt=row["attempt"],
                          actor=holder, at=now, pid=w.pid, log=w.log_path,
                          lease_expires=iso(expires))
        return ClaimResult(True, task_id, holder=holder, lease_expires=expires,
                           attempt=row["attempt"], attempt_id=attempt_id,
                           max_attempts=max_attempts)

    def mark_dispatched(
        self,
        mission_id: str,
        task_id: str,
        holder: str,
        *,
        pid: int | None = None,
        pid_start: str | None = None,
        lease: float | None = None,
        log_path: str | None = None,
        prompt_path: str | None = None,
        now: float | None = None,
        fetch: bool = True,
    ) -> ClaimRow | None:
        """claimed → dispatched: the worker started (pid when known, so sweeps can watch it).

        Returns the updated claim (None with ``fetch=False``, which saves a query
        on the runner's hot path)."""
        with self.db.tx() as db:
            claim = db.execute(  # locks the claim and its task row, as claim and record do
                "SELECT c.attempt_id, c.holder, c.lease_expires, t.state, t.attempt FROM claims c "
                "JOIN tasks t ON t.mission_id = c.mission_id AND t.id = c.task_id "
                "WHERE c.mission_id = ? AND c.task_id = ?" + self.db.store.for_update,
                (mission_id, task_id),
            ).fetchone()
            if claim is None:
                state = self.queries.task_state(db, mission_id, task_id)["state"]
                raise InputError(
                    f"task {task_id!r} is {state}, not claimed; claim it before dispatching",
                    path=self.db.where,
                )
            if claim["holder"] != holder:
                raise self._held_by(task_id, claim['holder'], holder)
            now = self.db.now(now)  # after the first statement: read with its BEGIN
            expires = now + lease if lease is not None else claim["lease_expires"]
            db.execute(
                "UPDATE claims SET pid = COALESCE(?, pid), pid_start = COALESCE(?, pid_start), "
                "lease_expires = ? WHERE mission_id = ? AND task_id = ?",
                (pid, pid_start, expires, mission_id, task_id),
            )
            db.execute(
                "UPDATE attempts SET dispatched_at = COALESCE(dispatched_at, ?), "
                "pid = COALESCE(?, pid), log_path = COALESCE(?, log_path), "
                "prompt_path = COALESCE(?, prompt_path) WHERE id = ?",
                (now, pid, log_path, prompt_path, claim["attempt_id"]),
            )
            db.execute(
                "UPDATE tasks SET state = 'dispatched', updated_at = ? "
                "WHERE mission_id = ? AND id = ?",
                (now, mission_id, task_id),
            )
            if claim["state"] != "dispatched":
                self.db.event(db, mission_id, task_id, "dispatched", attempt=claim["attempt"],
                              actor=holder, at=now, pid=pid, log=log_path,
                              lease_expires=iso(expires))
        return self.queries.claim_of(mission_id, task_id) if fetch else None

    def renew(self, mission_id: str, holder: str, expiries: dict[str, float], *,
              now: float | None = None) -> None:
        """Push the leases of claims ``holder`` still works on (one transaction, no event):
        the heartbeat of whatever supervises the workers.

        ``expiries`` are times by this process's clock; they are stored as the same
        distance from the database's clock (``now``), so a holder whose clock is off
        cannot shorten or stretch its lease as others measure it."""
        if not expiries:
            return
        shift = self.db.now(now) - time.time() if now is None else 0.0
        with self.db.tx() as db:
            db.executemany(
                "UPDATE claims SET lease_expires = CASE WHEN lease_expires < ? THEN ? "
                "ELSE lease_expires END WHERE mission_id = ? AND task_id = ? AND holder = ?",
                [(expires + shift, expires + shift, mission_id, task_id, holder)
                 for task_id, expires in expiries.items()],
            )

    def adopt(self, mission_id: str, task_id: str, attempt_id: int, holder: str, *,
              holder_pid: int | None, holder_start: str | None, reason: str) -> bool:
        """Take over a live worker whose holder died (a killed runner): keep its attempt."""
        with self.db.tx() as db:
            taken = db.execute(  # RETURNING, not rowcount: pipelined backends count late
                "UPDATE claims SET holder = ?, holder_pid = ?, holder_start = ?, host = ? "
                "WHERE mission_id = ? AND task_id = ? AND attempt_id = ? RETURNING attempt_id",
                (holder, holder_pid, holder_start, hostname(), mission_id, task_id, attempt_id),
            ).fetchone()
            if taken is None:
                return False
            db.execute("UPDATE attempts SET holder = ? WHERE id = ?", (holder, attempt_id))
            number = self._attempt_number(db, attempt_id)
            self.db.event(db, mission_id, task_id, "adopted", attempt=number, actor=holder,
                          reason=reason)
        return True

    def release(
        self,
        mission_id: str,
        task_id: str,
        *,
        reason: str,
        holder: str | None = None,
        expect_attempt: int | None = None,
        outcome: str = "released",
        actor: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Give a claim back without using up an attempt (its worker never ran, or was stopped
        by the user rather than failing)."""
        with self.db.tx() as db:
            _, claim, _ = self.queries.task_with_claim(db, mission_id, task_id)
            if claim is None:
                return False
            if expect_attempt is not None and claim["attempt_id"] != expect_attempt:
                return False
            if holder is not None and claim["holder"] != holder:
                raise self._held_by(task_id, claim['holder'], holder)
            now = self.db.now(now)
            number = self._attempt_number(db, claim["attempt_id"])
            db.execute(
                "UPDATE attempts SET outcome = ?, ended_at = ?, error = ? WHERE id = ?",
                (outcome, now, reason, claim["attempt_id"]),
            )
            db.execute("DELETE FROM claims WHERE mission_id = ? AND task_id = ?",
                       (mission_id, task_id))
            db.execute(
                "UPDATE tasks SET state = 'ready', updated_at = ? WHERE mission_id = ? AND id = ?",
                (now, mission_id, task_id),
            )
            self.db.event(db, mission_id, task_id, outcome, attempt=number,
                          actor=actor or claim["holder"], at=now, reason=reason)
        return True
