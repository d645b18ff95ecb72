"""Read-only questions about a mission: its tasks, what is ready, who holds what.

Kept apart from the transactions that change state so that the claiming, recording,
reporting and sweeping parts can share them; none of these takes the write lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.connection import Db, together
from dispatch_kit.ledger.rows import ClaimRow, Mission, TaskRow, mapping

NO_LIMIT = 1 << 62  # "no limit" as every engine reads it (SQLite's -1 is an error elsewhere)

# What a TaskRow and a ClaimRow are read from: shared, so claiming reads a task as these do.
TASK_COLS = (
    "id, seq, title, type, cwd, timeout, max_retries, state, attempt, last_error, "
    "last_check, skipped_because, started_at, finished_at"
)

TASK_STATE_SQL = "SELECT state, attempt, max_retries FROM tasks WHERE mission_id = ? AND id = ?"

# A task's claim: its attempt and holder (none when the task is not claimed).
CLAIM_OF_SQL = "SELECT attempt_id, holder FROM claims WHERE mission_id = ? AND task_id = ?"

# The dependencies of one task that are not verified yet, in plan order.
BLOCKERS_SQL = (
    "SELECT u.id, u.state FROM deps d JOIN tasks u ON u.mission_id = d.mission_id "
    "AND u.id = d.dep_id WHERE d.mission_id = ? AND d.task_id = ? "
    "AND u.state != 'verified' ORDER BY u.seq"
)

CLAIM_SQL = (
    "SELECT c.task_id, t.state, t.attempt, c.attempt_id, c.holder, c.holder_pid, "
    "c.holder_start, c.host, c.claimed_at, c.lease_expires, c.pid, c.pid_start, "
    "a.dispatched_at, a.log_path, t.timeout FROM claims c "
    "JOIN tasks t ON t.mission_id = c.mission_id AND t.id = c.task_id "
    "JOIN attempts a ON a.id = c.attempt_id WHERE c.mission_id = ?"
)


class Queries:
    """Lookups shared by every kind of ledger change: given the database, nothing else."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def missions(self) -> list[Mission]:
        rows = self.db.conn.execute(
            "SELECT id, plan_path, plan_hash, max_tasks, goal, workspace, created_at, started_at, "
            "finished_at FROM missions ORDER BY created_at"
        ).fetchall()
        return [Mission(**mapping(row)) for row in rows]

    def mission(self, mission_id: str | None = None) -> Mission:
        """The named mission, or the only one; several without a name is an input error."""
        missions = self.missions()
        if mission_id is not None:
            for mission in missions:
                if mission.id == mission_id:
                    return mission
            known = ", ".join(m.id for m in missions) or "none"
            raise InputError(
                f"no mission {mission_id!r} in this ledger (missions: {known})",
                path=self.db.where,
            )
        if len(missions) == 1:
            return missions[0]
        if not missions:
            raise InputError(
                "the ledger holds no mission; run `dispatch-kit ledger init PLAN`",
                path=self.db.where,
            )
        names = ", ".join(m.id for m in missions)
        raise InputError(
            f"the ledger holds {len(missions)} missions ({names}); pass --mission",
            path=self.db.where,
        )

    def tasks(self, mission_id: str) -> list[TaskRow]:
        rows = self.db.conn.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE mission_id = ? ORDER BY seq",
            (mission_id,),
        ).fetchall()
        return [TaskRow(**mapping(row)) for row in rows]

    def task(self, mission_id: str, task_id: str) -> TaskRow:
        row = self.db.conn.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE mission_id = ? AND id = ?",
            (mission_id, task_id),
        ).fetchone()
        if row is None:
            raise self.unknown_task(mission_id, task_id)
        return TaskRow(**mapping(row))

    def unknown_task(self, mission_id: str, task_id: str) -> InputError:
        ids = [r[0] for r in self.db.conn.execute(
            "SELECT id FROM tasks WHERE mission_id = ? ORDER BY seq LIMIT 12", (mission_id,)
        )]
        return InputError(
            f"unknown task {task_id!r} in mission {mission_id!r} (tasks: {', '.join(ids)})",
            path=self.db.where,
        )

    def task_state(self, db: Any, mission_id: str, task_id: str) -> Any:
        """State, attempt and retry budget, read inside the caller's write transaction.

        Claiming and recording both decide from exactly these three columns, so they read
        them the same way (and fail the same way on an unknown task). The row stays locked
        until the transaction ends (on a backend with row locks), so racers for one task
        take turns and each decides on what the previous one committed.
        """
        row = db.execute(TASK_STATE_SQL + self.db.store.for_update,
                         (mission_id, task_id)).fetchone()
        if row is None:
            raise self.unknown_task(mission_id, task_id)
        return row

    def task_with_claim(self, db: Any, mission_id: str, task_id: str,
                        *more: tuple[str, Sequence[Any]]) -> tuple[Any, Any, list[Any]]:
        """:meth:`task_state` (locked), the task's claim (attempt id and holder, or None)
        and the results of ``more`` statements, read in one round trip (with the BEGIN)
        where the backend has round trips: each runs after the one before it, so the claim
        is what the last transaction on that task committed."""
        state, claim, *rest = together(
            db, (TASK_STATE_SQL + self.db.store.for_update, (mission_id, task_id)),
            (CLAIM_OF_SQL, (mission_id, task_id)), *more)
        row = state.fetchone()
        if row is None:
            raise self.unknown_task(mission_id, task_id)
        return row, claim.fetchone(), rest

    def in_flight(self, mission_id: str) -> int:
        return self.db.conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE mission_id = ? AND state IN ('claimed','dispatched')",
            (mission_id,),
        ).fetchone()[0]

    def next_ready(
        self, mission_id: str, *, wip: int | None = None, limit: int | None = None
    ) -> list[TaskRow]:
        """Ready tasks whose dependencies are all verified, in plan order.

        With ``wip``, at most ``wip`` minus the tasks already claimed or
        dispatched: the backpressure that keeps a batch from flooding.
        """
        db = self.db.conn  # one statement when wip is None, so no snapshot is needed
        with self.db.read() if wip is not None else contextlib.nullcontext():
            room = NO_LIMIT if limit is None else max(0, limit)
            if wip is not None:
                inflight = self.in_flight(mission_id)
                free = max(0, wip - inflight)
                room = min(room, free)
            if room == 0:
                return []
            rows = db.execute(
                f"SELECT {TASK_COLS} FROM tasks t WHERE t.mission_id = ? "
                "AND t.state = 'ready' AND NOT EXISTS (SELECT 1 FROM deps d JOIN tasks u "
                "ON u.mission_id = d.mission_id AND u.id = d.dep_id "
                "WHERE d.mission_id = t.mission_id AND d.task_id = t.id "
                "AND u.state != 'verified') ORDER BY t.seq LIMIT ?",
                (mission_id, room),
            ).fetchall()
        return [TaskRow(**mapping(row)) for row in rows]

    def claims(self, mission_id: str) -> list[ClaimRow]:
        rows = self.db.conn.execute(CLAIM_SQL + " ORDER BY t.seq", (mission_id,)).fetchall()
        return [ClaimRow(**mapping(row)) for row in rows]

    def claim_of(self, mission_id: str, task_id: str) -> ClaimRow | None:
        row = self.db.conn.execute(
            CLAIM_SQL + " AND c.task_id = ?", (mission_id, task_id)
        ).fetchone()
        return ClaimRow(**mapping(row)) if row else None
