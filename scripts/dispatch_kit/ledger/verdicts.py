"""Applying the checker's verdict: verified, retry with the error, or failed.

A failure is stored as the summary a retry prompt quotes, and the last failed attempt
skips every task that depended on it, so a mission always ends instead of waiting.
"""

from __future__ import annotations

import json
from typing import Any

from dispatch_kit.ledger.connection import Db, append_event, together
from dispatch_kit.ledger.queries import Queries
from dispatch_kit.ledger.rows import RecordResult, first_line
from dispatch_kit.ledger.schema import TERMINAL
from dispatch_kit.procs.groups import hostname

ERROR_LIMIT = 4000


def summarize_check(entry: dict, note: str | None = None) -> str:
    """The error context a retry prompt needs, from one task entry of the check JSON."""
    lines = [note] if note else []
    for crit in entry.get("criteria") or []:
        if crit.get("verdict") == "pass":
            continue
        index = crit.get("index")
        number = index + 1 if isinstance(index, int) else "?"
        head = f"criterion {number} `{crit.get('criterion', '')}`"
        head += f" {crit.get('verdict', 'fail')}"
        message = str(crit.get("message") or "")
        if crit.get("exit_code") not in (None, 0) and "exit" not in message:
            head += f" (exit {crit.get('exit_code')})"
        if crit.get("message"):
            head += f": {crit['message']}"
        lines.append(head)
        for stream in ("stderr_tail", "stdout_tail"):
            tail = (crit.get(stream) or "").strip()
            if tail:
                lines.append(f"  {stream.split('_')[0]}: " + " | ".join(tail.splitlines()[-3:]))
    if not lines:
        lines.append("exit criteria not met")
    text = "\n".join(lines)
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def skip_dependents(db: Any, mission_id: str, task_id: str,
                    now: float) -> list[str]:
    """Skip every ready task that depends, directly or not, on ``task_id`` (which failed)."""
    rows = db.execute(
        "WITH RECURSIVE down(id) AS ("
        " SELECT task_id FROM deps WHERE mission_id = ? AND dep_id = ?"
        " UNION SELECT d.task_id FROM deps d JOIN down ON d.dep_id = down.id"
        " WHERE d.mission_id = ?) "
        "SELECT t.id FROM tasks t JOIN down ON t.id = down.id "
        "WHERE t.mission_id = ? AND t.state = 'ready' ORDER BY t.seq",
        (mission_id, task_id, mission_id, mission_id),
    ).fetchall()
    skipped = [r[0] for r in rows]
    for dep in skipped:
        db.execute(
            "UPDATE tasks SET state = 'skipped', skipped_because = ?, finished_at = ?, "
            "updated_at = ? WHERE mission_id = ? AND id = ?",
            (task_id, now, now, mission_id, dep),
        )
        append_event(db, mission_id, dep, "skipped", at=now, because=task_id)
    return skipped


# A task in flight, other than the one being recorded, that no other transaction is
# changing right now; locked until this transaction ends (see ``finish_if_done``).
OPEN_ELSEWHERE_SQL = (
    "SELECT 1 FROM tasks WHERE mission_id = ? AND id != ? "
    "AND state IN ('claimed','dispatched') LIMIT 1"
)


def finish_if_done(db: Any, mission_id: str, now: float, lock: str = "", *,
                   open_elsewhere: bool = False) -> None:
    """Stamp the mission finished once no task is open (checked on every verdict).

    ``lock`` (the backend's ``FOR UPDATE``) makes concurrent verdicts take turns on the
    mission row here, so the last of two that finish the last two tasks sees the other's
    commit and stamps the mission; without it each could see the other still open.

    Taking turns on every verdict would queue all runners of a mission behind one row,
    so with row locks a verdict first locks a task in flight that no other transaction is
    changing (``OPEN_ELSEWHERE_SQL`` with ``SKIP LOCKED``; ``open_elsewhere`` when it found
    one): that task stays open until this transaction commits, and whoever ends it later
    must wait for its row and looks after this commit, so this verdict cannot be the last
    one and need not take its turn. Only when every task in flight is being changed right
    now (or none is) does it queue."""
    if open_elsewhere:
        return
    _, still_open = together(  # the second reads after the first holds the mission row
        db, ("SELECT id FROM missions WHERE id = ?" + lock, (mission_id,)),
        ("SELECT 1 FROM tasks WHERE mission_id = ? AND state IN "  # an index lookup
         "('ready','claimed','dispatched') LIMIT 1", (mission_id,)))
    if still_open.fetchone() is None:
        stamped = db.execute(
            "UPDATE missions SET finished_at = ?, updated_at = ? "
            "WHERE id = ? AND finished_at IS NULL RETURNING id",
            (now, now, mission_id),
        ).fetchone()
        if stamped is not None:
            append_event(db, mission_id, None, "finished", at=now)


class Verdicts:
    """The ``record`` transaction.

    Given the database and the shared queries (the task row a verdict decides from), so
    the sweeper and the runner reach one ``record`` without inheriting the claims code.
    """

    def __init__(self, db: Db, queries: Queries) -> None:
        self.db = db
        self.queries = queries

    def record(
        self,
        mission_id: str,
        task_id: str,
        entry: dict,
        *,
        note: str | None = None,
        exit_code: int | None = None,
        timed_out: bool = False,
        expect_attempt: int | None = None,
        lost: bool = False,
        actor: str | None = None,
        now: float | None = None,
    ) -> RecordResult:
        """Apply the checker's verdict for one task (one element of the check JSON's ``tasks``).

        Passed → verified. Failed → the error is stored for the retry prompt and
        the task goes back to ready at attempt + 1, or, after the last attempt,
        to failed with every ready transitive dependent skipped.
        """
        passed = bool(entry.get("passed"))
        if not passed and note and "note" not in entry:
            # The retry prompt is built from the stored entry: keep how the worker ended.
            entry = dict(entry, note=note, worker_timed_out=timed_out)
        with self.db.tx() as db:
            store = self.db.store
            row, claim, probe = self.queries.task_with_claim(
                db, mission_id, task_id,
                *([(OPEN_ELSEWHERE_SQL + store.skip_locked, (mission_id, task_id))]
                  if store.skip_locked else []))
            open_elsewhere = bool(probe) and probe[0].fetchone() is not None
            now = self.db.now(now)  # after the first statements: read with their BEGIN
            attempt, max_attempts = row["attempt"], 1 + row["max_retries"]
            if row["state"] in TERMINAL:
                return RecordResult(task_id, f"already-{row['state']}", attempt, max_attempts)
            if expect_attempt is not None and (claim is None or claim["attempt_id"] !=
                                               expect_attempt):
                return RecordResult(task_id, "stale", attempt, max_attempts)
            error = "" if passed else summarize_check(entry, note)
            if claim is not None:
                outcome = "verified" if passed else ("lost" if lost else "failed")
                db.execute(
                    "UPDATE attempts SET outcome = ?, ended_at = ?, exit_code = ?, "
                    "timed_out = ?, error = ?, dispatched_at = COALESCE(dispatched_at, claimed_at) "
                    "WHERE id = ?",
                    (outcome, now, exit_code, int(timed_out), error or None, claim["attempt_id"]),
                )
                db.execute("DELETE FROM claims WHERE mission_id = ? AND task_id = ?",
                           (mission_id, task_id))
            else:
                # A verdict without a claim (the skill checked before claiming, or a late
                # result after a sweep): keep the history complete with a zero-length attempt.
                db.execute(
                    "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
                    "dispatched_at, ended_at, outcome, exit_code, timed_out, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (mission_id, task_id, attempt, actor or "record", hostname(), now, now, now,
                     "verified" if passed else "failed", exit_code, int(timed_out),
                     error or None),
                )
            who = actor or (claim["holder"] if claim else None)
            skipped: list[str] = []
            if passed:
                db.execute(
                    "UPDATE tasks SET state = 'verified', last_error = NULL, finished_at = ?, "
                    "started_at = COALESCE(started_at, ?), updated_at = ? "
                    "WHERE mission_id = ? AND id = ?",
                    (now, now, now, mission_id, task_id),
                )
                self.db.event(db, mission_id, task_id, "verified", attempt=attempt, actor=who,
                              at=now, exit_code=exit_code, note=note)
                outcome_name = "verified"
            elif attempt < max_attempts:
                db.execute(
                    "UPDATE tasks SET state = 'ready', attempt = attempt + 1, last_error = ?, "
                    "last_check = ?, updated_at = ? WHERE mission_id = ? AND id = ?",
                    (error, json.dumps(entry), now, mission_id, task_id),
                )
                self.db.event(db, mission_id, task_id, "retry", attempt=attempt, actor=who, at=now,
                              error=first_line(error), exit_code=exit_code, timed_out=timed_out)
                outcome_name = "retry"
            else:
                db.execute(
                    "UPDATE tasks SET state = 'failed', last_error = ?, last_check = ?, "
                    "finished_at = ?, updated_at = ? WHERE mission_id = ? AND id = ?",
                    (error, json.dumps(entry), now, now, mission_id, task_id),
                )
                self.db.event(db, mission_id, task_id, "failed", attempt=attempt, actor=who, at=now,
                              error=first_line(error), exit_code=exit_code, timed_out=timed_out)
                skipped = skip_dependents(db, mission_id, task_id, now)
                outcome_name = "failed"
            finish_if_done(db, mission_id, now, store.for_update,
                           open_elsewhere=open_elsewhere)
        return RecordResult(task_id, outcome_name, attempt, max_attempts, error, tuple(skipped))
