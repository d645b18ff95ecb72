"""Import the hooks' local journal into a PostgreSQL ledger: each journaled event once.

The session hooks never connect to a PostgreSQL ledger (the driver's import
alone is several times a hook's budget): they append their events to
``.dispatch/journal.db`` (:mod:`dispatch_kit.guards.journal`). This module
applies those rows to the ledger as the SQLite guards
(:mod:`dispatch_kit.guards.store`) would have written them at the time: a
``requested`` dispatch becomes the claim and dispatched attempt (holder
``hook:<session>``, the host that dispatched, the lease counted from the
dispatch) plus its ``agents`` row and events; ``launched`` attaches the agent
id and its output file; ``failed`` ends the dispatch; ``stopped`` records the
agent's end and transcript (kept for a launch still to come, as on SQLite).

Each row is applied once, however many importers race (two sessions, a
``ledger status`` next to a ``ledger sweep``, two machines sharing a
folder): its ``uid`` is inserted into ``journal_imports`` in the same
transaction as its effect, ``ON CONFLICT DO NOTHING``, so the second importer
waits on the first's row and then passes over it. Rows are applied in the
journal's order, one transaction each, and each is marked imported in the
journal once its transaction has committed (with the claim's lease, which
the hooks' duplicate refusal then uses). A row naming a mission or task this
ledger does not have, or a task already finished, is marked with why.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from dispatch_kit.guards import journal as hook_journal
from dispatch_kit.ledger.connection import append_event
from dispatch_kit.ledger.rows import iso

IMPORTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS journal_imports ("
    "uid TEXT PRIMARY KEY, kind TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, outcome TEXT)"
)
SETUP_LOCK = "dispatch-kit journal import"
LIVE_STATES = ("claimed", "dispatched")


@dataclass
class ImportReport:
    journal: str
    applied: int = 0
    already: int = 0  # applied by another importer
    skipped: list[str] = field(default_factory=list)  # "uid: why"


def find_journal(start: str | None = None) -> str | None:
    """``.dispatch/journal.db`` in the current folder (or ``start``) or a parent."""
    return hook_journal.find(start or os.getcwd())


def import_found(ledger: Any, url: str) -> ImportReport | None:
    """Before a command works on the PostgreSQL ledger at ``url``: import the journal found
    from the current folder, if any. A failure is said on stderr and the command goes on
    (the journal keeps its rows for the next import)."""
    path = find_journal()
    if path is None:
        return None
    try:
        return import_journal(ledger, url, path)
    except Exception as exc:  # noqa: BLE001 - the command's own work comes first
        import sys

        print(f"ledger: the session hooks' journal was not imported ({exc})", file=sys.stderr)
        return None


def import_journal(ledger: Any, url: str, path: str) -> ImportReport:
    """Apply the journal at ``path``'s rows for the ledger at ``url`` (open as ``ledger``)."""
    report = ImportReport(path)
    key = hook_journal.redact(url)
    book = hook_journal.connect(path)
    try:
        pending = book.execute(
            "SELECT * FROM journal WHERE imported_at IS NULL AND ledger = ? ORDER BY seq",
            (key,),
        ).fetchall()
        if not pending:
            return report
        _setup(ledger)
        for row in pending:
            with ledger.store.transaction() as db:
                taken = db.execute(
                    "INSERT INTO journal_imports (uid, kind, at) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING uid", (row["uid"], row["kind"], time.time()),
                ).fetchone()
                if taken is None:
                    outcome, lease = "already imported", None
                else:
                    outcome, lease = APPLY[row["kind"]](db, row)
                    if row["kind"] == "requested" and outcome not in ("applied",
                                                                      "already recorded"):
                        lease = float(row["at"])  # not a dispatch here: refuse nothing by it
                    db.execute("UPDATE journal_imports SET outcome = ? WHERE uid = ?",
                               (outcome, row["uid"]))
            if taken is None:
                report.already += 1
            elif outcome == "applied":
                report.applied += 1
            else:
                report.skipped.append(f"{row['kind']} {row['task'] or row['agent_id']}: "
                                      f"{outcome}")
            book.execute("BEGIN IMMEDIATE")
            book.execute(
                "UPDATE journal SET imported_at = ?, import_note = ?, "
                "live_until = COALESCE(?, live_until) WHERE uid = ?",
                (time.time(), outcome, lease, row["uid"]),
            )
            book.execute("COMMIT")
        _prune(book, time.time())
    finally:
        book.close()
    return report


KEEP_S = 7 * 86400  # how long imported rows stay in the journal


def _prune(book: Any, now: float) -> None:
    """Drop imported rows a week old whose request's lease is over (the refusal's window)."""
    book.execute("BEGIN IMMEDIATE")
    book.execute("DELETE FROM journal WHERE imported_at IS NOT NULL AND at < ? "
                 "AND COALESCE(live_until, 0) < ?", (now - KEEP_S, now))
    book.execute("COMMIT")


def _setup(ledger: Any) -> None:
    """``journal_imports`` (and the guards' tables, for a ledger made before them)."""
    have = ledger.conn.execute(
        "SELECT to_regclass('journal_imports') IS NOT NULL AND "
        "to_regclass('agents') IS NOT NULL AND to_regclass('agent_stops') IS NOT NULL"
    ).fetchone()[0]
    if have:
        return
    from dispatch_kit.ledger.schema import portable_tables

    with ledger.store.transaction() as db:
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (SETUP_LOCK,))
        for statement in portable_tables("postgresql"):
            head = statement.split("(", 1)[0].rstrip()
            if head.endswith((" agents", " agent_stops")) or " ON agents" in head:
                db.execute(statement)
        db.execute(IMPORTS_TABLE)


def _actor(session: str | None) -> str:
    return "hook:" + (session or "session")[:8]


# --------------------------------------------------------------------------- requested


def _resolve_mission(db: Any, mission: str | None, task: str | None) -> str | None:
    if db.execute("SELECT 1 FROM missions WHERE id = ?", (mission,)).fetchone():
        return mission
    rows = db.execute("SELECT mission_id FROM tasks WHERE id = ?", (task,)).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def _requested(db: Any, row: Any) -> tuple[str, float | None]:
    """The dispatch as the SQLite guards record it (``guards.store.record_dispatch``)."""
    mission = _resolve_mission(db, row["mission"], row["task"])
    if mission is None:
        return f"no mission {row['mission']!r} with task {row['task']!r} in this ledger", None
    task_id, at, actor = row["task"], float(row["at"]), _actor(row["session_id"])
    task = db.execute(
        "SELECT state, attempt, timeout FROM tasks WHERE mission_id = ? AND id = ? FOR UPDATE",
        (mission, task_id),
    ).fetchone()
    if task is None:
        return f"no task {task_id!r} in mission {mission!r}", None
    if row["tool_use_id"] and db.execute(
        "SELECT 1 FROM agents WHERE session_id IS NOT DISTINCT FROM ? AND tool_use_id = ?",
        (row["session_id"], row["tool_use_id"]),
    ).fetchone():
        return "already recorded", None
    state, number = task["state"], int(task["attempt"])
    note = None if row["attempt"] == number else (
        f"the prompt says attempt {row['attempt']}, the ledger is at attempt {number}")
    if state == "ready":
        blockers = [r[0] for r in db.execute(
            "SELECT u.id FROM deps x JOIN tasks u ON u.mission_id = x.mission_id "
            "AND u.id = x.dep_id WHERE x.mission_id = ? AND x.task_id = ? "
            "AND u.state != 'verified' ORDER BY u.seq", (mission, task_id),
        )]
        if blockers:
            return f"{task_id} waits for {', '.join(blockers)}; not recorded", None
        attempt_id, lease = _claim(db, mission, task_id, number, float(task["timeout"]), row)
    elif state in LIVE_STATES:
        attempt_id, lease = _take_over(db, mission, task_id, number, float(task["timeout"]),
                                       row, state)
    else:
        return f"{task_id} is already {state}; not recorded", None
    db.execute(
        "INSERT INTO agents (mission_id, task_id, attempt, attempt_id, session_id, "
        "tool_use_id, prompt_hash, name, agent_type, requested_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (mission, task_id, number, attempt_id, row["session_id"], row["tool_use_id"],
         row["prompt_hash"] or "", row["name"], row["agent_type"], at),
    )
    append_event(db, mission, task_id, "agent-requested", attempt=number, actor=actor, at=at,
                 name=row["name"], agent_type=row["agent_type"], tool_use=row["tool_use_id"],
                 note=note, journal=row["uid"])
    return "applied", lease


def _claim(db: Any, mission: str, task: str, number: int, lease: float,
           row: Any) -> tuple[int, float]:
    at, actor, host = float(row["at"]), _actor(row["session_id"]), row["host"] or "?"
    expires = at + lease
    attempt_id = int(db.execute(
        "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
        "dispatched_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (mission, task, number, actor, host, at, at),
    ).fetchone()[0])
    db.execute(
        "INSERT INTO claims (mission_id, task_id, attempt_id, holder, host, claimed_at, "
        "lease_expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mission, task, attempt_id, actor, host, at, expires),
    )
    db.execute(
        "UPDATE tasks SET state = 'dispatched', started_at = COALESCE(started_at, ?), "
        "updated_at = ? WHERE mission_id = ? AND id = ?", (at, at, mission, task),
    )
    db.execute(
        "UPDATE missions SET started_at = ?, updated_at = ? WHERE id = ? AND started_at IS NULL",
        (at, at, mission),
    )
    append_event(db, mission, task, "claimed", attempt=number, actor=actor, at=at,
                 lease_expires=iso(expires), host=host)
    append_event(db, mission, task, "dispatched", attempt=number, actor=actor, at=at,
                 agent=row["name"], lease_expires=iso(expires))
    return attempt_id, expires


def _take_over(db: Any, mission: str, task: str, number: int, lease: float, row: Any,
               state: str) -> tuple[int, float]:
    """A claim someone holds: this dispatch is its worker, the lease restarts from it."""
    at = float(row["at"])
    claim = db.execute(
        "SELECT attempt_id, holder, lease_expires FROM claims WHERE mission_id = ? "
        "AND task_id = ? FOR UPDATE", (mission, task),
    ).fetchone()
    if claim is None:
        raise RuntimeError(f"{task} is {state} but holds no claim")
    expires = max(float(claim["lease_expires"]), at + lease)
    db.execute("UPDATE claims SET lease_expires = ? WHERE mission_id = ? AND task_id = ?",
               (expires, mission, task))
    db.execute("UPDATE attempts SET dispatched_at = COALESCE(dispatched_at, ?) WHERE id = ?",
               (at, claim["attempt_id"]))
    if state != "dispatched":
        db.execute("UPDATE tasks SET state = 'dispatched', updated_at = ? WHERE mission_id = ? "
                   "AND id = ?", (at, mission, task))
        append_event(db, mission, task, "dispatched", attempt=number, actor=claim["holder"],
                     at=at, agent=row["name"], lease_expires=iso(expires))
    return int(claim["attempt_id"]), expires


# --------------------------------------------------------------------------- launched, failed


def _call_row(db: Any, row: Any) -> Any:
    """The dispatch a launch belongs to (as ``guards.store._call_row``)."""
    if row["tool_use_id"]:
        return db.execute(
            "SELECT * FROM agents WHERE session_id IS NOT DISTINCT FROM ? AND tool_use_id = ? "
            "ORDER BY id DESC LIMIT 1", (row["session_id"], row["tool_use_id"]),
        ).fetchone()
    rows = db.execute(
        "SELECT * FROM agents WHERE session_id IS NOT DISTINCT FROM ? AND prompt_hash = ? "
        "AND agent_id IS NULL AND ended_at IS NULL", (row["session_id"], row["prompt_hash"]),
    ).fetchall()
    return rows[0] if len(rows) == 1 else None


def _failed(db: Any, row: Any) -> tuple[str, None]:
    agent = _call_row(db, row)
    if agent is None:
        return "no recorded dispatch for this call", None
    at, error = float(row["at"]), row["error"] or "the Agent call failed"
    db.execute("UPDATE agents SET ended_at = COALESCE(ended_at, ?), end_note = ? WHERE id = ?",
               (at, f"did not start: {error}"[:500], agent["id"]))
    append_event(db, agent["mission_id"], agent["task_id"], "agent-failed",
                 attempt=agent["attempt"], actor=_actor(row["session_id"]), at=at,
                 tool_use=agent["tool_use_id"], error=error[:300])
    return "applied", None


def _launched(db: Any, row: Any) -> tuple[str, None]:
    agent = _call_row(db, row)
    if agent is None:
        return "no recorded dispatch for this call", None
    agent_id, at, actor = row["agent_id"], float(row["at"]), _actor(row["session_id"])
    if agent["agent_id"] == agent_id:
        return "applied", None
    stop = db.execute("SELECT * FROM agent_stops WHERE agent_id = ?", (agent_id,)).fetchone()
    ended = stop["at"] if stop else (at if row["status"] == "completed" else None)
    db.execute(
        "UPDATE agents SET agent_id = ?, output_file = ?, launched_at = ?, "
        "ended_at = COALESCE(ended_at, ?), transcript_path = COALESCE(transcript_path, ?) "
        "WHERE id = ?",
        (agent_id, row["output_file"], at, ended, stop["transcript_path"] if stop else None,
         agent["id"]),
    )
    append_event(db, agent["mission_id"], agent["task_id"], "agent-launched",
                 attempt=agent["attempt"], actor=actor, at=at, agent=agent_id,
                 name=agent["name"], output=row["output_file"])
    if stop is not None:
        db.execute("DELETE FROM agent_stops WHERE agent_id = ?", (agent_id,))
        append_event(db, agent["mission_id"], agent["task_id"], "agent-stopped",
                     attempt=agent["attempt"], actor=actor, at=stop["at"], agent=agent_id,
                     transcript=stop["transcript_path"])
    return "applied", None


# --------------------------------------------------------------------------- stopped


def _stopped(db: Any, row: Any) -> tuple[str, None]:
    """As ``guards.store.stopped``: the agent's end, or kept for a launch still to come."""
    agent_id, at = row["agent_id"], float(row["at"])
    agent = db.execute(
        "SELECT * FROM agents WHERE agent_id = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
        (agent_id,),
    ).fetchone()
    if agent is not None:
        db.execute("UPDATE agents SET ended_at = ?, transcript_path = ? WHERE id = ?",
                   (at, row["transcript_path"], agent["id"]))
        append_event(db, agent["mission_id"], agent["task_id"], "agent-stopped",
                     attempt=agent["attempt"], actor=_actor(row["session_id"]), at=at,
                     agent=agent_id, transcript=row["transcript_path"])
        return "applied", None
    waiting = db.execute(
        "SELECT 1 FROM agents WHERE session_id IS NOT DISTINCT FROM ? AND agent_id IS NULL "
        "AND ended_at IS NULL LIMIT 1", (row["session_id"],),
    ).fetchone()
    if waiting is None:
        return "an agent no recorded dispatch started", None
    db.execute(
        "INSERT INTO agent_stops (agent_id, session_id, agent_type, transcript_path, at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
        "session_id = EXCLUDED.session_id, agent_type = EXCLUDED.agent_type, "
        "transcript_path = EXCLUDED.transcript_path, at = EXCLUDED.at",
        (agent_id, row["session_id"], row["agent_type"], row["transcript_path"], at),
    )
    return "applied", None


APPLY = {"requested": _requested, "launched": _launched, "failed": _failed,
         "stopped": _stopped}
