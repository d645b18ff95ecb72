"""The guards' ledger writes and reads, in plain SQL on the standard library's sqlite3.

The hooks run on every dispatch, so they do not load the ledger package (its
imports alone cost more than the 5 ms a hook's write may add); they write the
same rows the way :mod:`dispatch_kit.ledger.claims` does (a claim, an
attempt, ``claimed`` and ``dispatched`` events) plus the ``agents`` table of
:mod:`dispatch_kit.guards.tables`. Each change is one ``BEGIN IMMEDIATE``
transaction, so two sessions dispatching at once queue and both land, and a
second dispatch of a task sees the first.
"""

from __future__ import annotations

import json
import os
import time

try:  # the C module the sqlite3 package wraps: the package adds only date adapters, which
    import _sqlite3 as sqlite3  # these writes never use, and its datetime import (~1 ms)
except ImportError:  # pragma: no cover - an interpreter without the private module
    import sqlite3

from dispatch_kit.guards.tables import AGENTS_SCHEMA

BUSY_TIMEOUT_S = 10.0
# A dispatch whose agent id has not arrived yet counts as running this long: the
# PostToolUse of a background launch follows within milliseconds, but a foreground
# agent reports only when it ends, and a call another hook blocked never reports.
PENDING_WINDOW_S = 600.0
LIVE_STATES = ("claimed", "dispatched")


class GuardError(Exception):
    """A ledger the hook cannot use; the hook lets the session go on."""


def connect(path: str) -> sqlite3.Connection:
    """An existing ledger, read-write, waiting for racing writers instead of failing."""
    try:  # the caller found the file: a plain path (a URI would cost urllib's import)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        # As the ledger's own connections: in WAL mode a commit then needs no fsync.
        conn.execute("PRAGMA synchronous=NORMAL")
        # Closing the last connection checkpoints the WAL and deletes it, and that must stay
        # (no SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, no leaving without close): each hook is a
        # process of its own, and the next one to open a WAL no process holds rebuilds its
        # index, which forgets what was checkpointed, so the WAL would grow with every
        # dispatch and each hook would read it all, then checkpoint it all on every commit.
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        raise GuardError(f"{path}: not a usable ledger ({exc})") from None
    if row is None or row[0] != "1":
        conn.close()
        raise GuardError(f"{path}: not a dispatch-kit ledger of schema version 1")
    return conn


def has_agents(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agents'"
    ).fetchone()
    return row is not None


def ensure_agents(conn: sqlite3.Connection) -> None:
    """Create the guards' tables in a ledger made before them (inside the caller's write)."""
    if not has_agents(conn):
        for statement in AGENTS_SCHEMA.strip().split(";"):
            if statement.strip():
                conn.execute(statement)


def event(conn: sqlite3.Connection, mission: str, task: str | None, kind: str, *,
          attempt: int | None, actor: str, at: float, **detail: object) -> None:
    """One row of the append-only history, as the ledger's own ``append_event`` writes it."""
    conn.execute(
        "INSERT INTO events (at, mission_id, task_id, kind, attempt, actor, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, mission, task, kind, attempt, actor,
         json.dumps({k: v for k, v in detail.items() if v is not None})),
    )


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def ago(seconds: float) -> str:
    """A short age: 45s, 3m, 2h05m."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Tx:
    """``with Tx(conn):`` one write transaction, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")


# --------------------------------------------------------------------------- pre-dispatch


def resolve_mission(conn: sqlite3.Connection, mission: str, task: str) -> str | None:
    """The mission the line names; else the only mission of this ledger with that task
    (a ledger loaded with ``init --mission NAME`` while the prompt names the plan's)."""
    if conn.execute("SELECT 1 FROM missions WHERE id = ?", (mission,)).fetchone():
        return mission
    rows = conn.execute("SELECT mission_id FROM tasks WHERE id = ?", (task,)).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def live_agent(conn: sqlite3.Connection, mission: str, task: str, now: float, *,
               agents: bool | None = None):
    """The running agent of the task's attempt in flight: its claim's lease holds and no
    SubagentStop came; a dispatch still waiting for its agent id counts for a while.
    ``agents``: whether the ``agents`` table exists, when the caller knows."""
    if not (has_agents(conn) if agents is None else agents):
        return None
    return conn.execute(
        "SELECT a.*, c.lease_expires FROM agents a JOIN claims c ON c.mission_id = a.mission_id "
        "AND c.task_id = a.task_id AND c.attempt_id = a.attempt_id "
        "WHERE a.mission_id = ? AND a.task_id = ? AND a.ended_at IS NULL "
        "AND c.lease_expires > ? AND (a.agent_id IS NOT NULL OR a.requested_at > ?) "
        "ORDER BY a.id DESC LIMIT 1",
        (mission, task, now, now - PENDING_WINDOW_S),
    ).fetchone()


class Dispatch:
    """What the pre-dispatch hook knows about one Agent call naming a plan task."""

    __slots__ = ("mission", "task", "attempt", "session", "tool_use_id", "prompt_hash", "name",
                 "agent_type", "actor")

    def __init__(self, mission: str, task: str, attempt: int, *, session: str | None,
                 tool_use_id: str | None, prompt_hash: str, name: str | None,
                 agent_type: str | None) -> None:
        self.mission = mission
        self.task = task
        self.attempt = attempt
        self.session = session
        self.tool_use_id = tool_use_id
        self.prompt_hash = prompt_hash
        self.name = name
        self.agent_type = agent_type
        self.actor = "hook:" + (session or "session")[:8]


def record_dispatch(conn: sqlite3.Connection, d: Dispatch, *, refuse: bool, record: bool,
                    now: float) -> tuple[str, object]:
    """Decide and record one dispatch: ("refused", live row) | ("recorded", note) | ("skipped",
    why). Refusal needs ``refuse``; any write needs ``record``."""
    with Tx(conn) as db:
        mission = resolve_mission(db, d.mission, d.task)
        if mission is None:
            return "skipped", f"no mission {d.mission!r} with task {d.task!r} in this ledger"
        d.mission = mission
        task = db.execute(
            "SELECT state, attempt, timeout, max_retries FROM tasks "
            "WHERE mission_id = ? AND id = ?", (mission, d.task),
        ).fetchone()
        if task is None:
            return "skipped", f"no task {d.task!r} in mission {mission!r}"
        agents = has_agents(db)
        if record and not agents:
            ensure_agents(db)
            agents = True
        if d.tool_use_id and agents and db.execute(
            "SELECT 1 FROM agents WHERE session_id IS ? AND tool_use_id = ?",
            (d.session, d.tool_use_id),
        ).fetchone():
            return "recorded", "already recorded"  # the same call's event, delivered again
        if refuse:
            live = live_agent(db, mission, d.task, now, agents=agents)
            if live is not None:
                event(db, mission, d.task, "dispatch-refused", attempt=live["attempt"],
                      actor=d.actor, at=now, running=live["agent_id"] or live["tool_use_id"],
                      name=d.name, tool_use=d.tool_use_id)
                return "refused", live
        if not record:
            return "skipped", "recording is off"
        state, number = task["state"], task["attempt"]
        note = None if d.attempt == number else (
            f"the prompt says attempt {d.attempt}, the ledger is at attempt {number}")
        if state == "ready":
            blockers = [r[0] for r in db.execute(
                "SELECT u.id FROM deps x JOIN tasks u ON u.mission_id = x.mission_id "
                "AND u.id = x.dep_id WHERE x.mission_id = ? AND x.task_id = ? "
                "AND u.state != 'verified' ORDER BY u.seq", (mission, d.task),
            )]
            if blockers:
                return "skipped", f"{d.task} waits for {', '.join(blockers)}; not recorded"
            attempt_id = _claim(db, mission, d.task, number, float(task["timeout"]), d, now)
        elif state in LIVE_STATES:
            attempt_id = _take_over(db, mission, d.task, number, float(task["timeout"]), d,
                                    now, state)
        else:
            return "skipped", f"{d.task} is already {state}; not recorded"
        db.execute(
            "INSERT INTO agents (mission_id, task_id, attempt, attempt_id, session_id, "
            "tool_use_id, prompt_hash, name, agent_type, requested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mission, d.task, number, attempt_id, d.session, d.tool_use_id, d.prompt_hash,
             d.name, d.agent_type, now),
        )
        event(db, mission, d.task, "agent-requested", attempt=number, actor=d.actor, at=now,
              name=d.name, agent_type=d.agent_type, tool_use=d.tool_use_id, note=note)
    return "recorded", note


def _claim(db: sqlite3.Connection, mission: str, task: str, number: int, lease: float,
           d: Dispatch, now: float) -> int:
    """ready → dispatched in one step, as ``Claims.claim`` does with a started worker."""
    host = os.uname().nodename
    expires = now + lease
    cur = db.execute(
        "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
        "dispatched_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mission, task, number, d.actor, host, now, now),
    )
    attempt_id = int(cur.lastrowid or 0)
    db.execute(
        "INSERT INTO claims (mission_id, task_id, attempt_id, holder, host, claimed_at, "
        "lease_expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mission, task, attempt_id, d.actor, host, now, expires),
    )
    db.execute(
        "UPDATE tasks SET state = 'dispatched', started_at = COALESCE(started_at, ?), "
        "updated_at = ? WHERE mission_id = ? AND id = ?", (now, now, mission, task),
    )
    db.execute(
        "UPDATE missions SET started_at = ?, updated_at = ? WHERE id = ? AND started_at IS NULL",
        (now, now, mission),
    )
    event(db, mission, task, "claimed", attempt=number, actor=d.actor, at=now,
          lease_expires=iso(expires), host=host)
    event(db, mission, task, "dispatched", attempt=number, actor=d.actor, at=now,
          agent=d.name, lease_expires=iso(expires))
    return attempt_id


def _take_over(db: sqlite3.Connection, mission: str, task: str, number: int, lease: float,
               d: Dispatch, now: float, state: str) -> int:
    """A claim someone holds (the orchestrator's ``ledger claim``, a workflow's attempt, or a
    dispatch whose agent ended or went quiet): this call is its worker. The lease restarts."""
    claim = db.execute(
        "SELECT attempt_id, holder, lease_expires FROM claims WHERE mission_id = ? "
        "AND task_id = ?", (mission, task),
    ).fetchone()
    if claim is None:  # in flight without a claim cannot happen through the ledger's API
        raise GuardError(f"{task} is {state} but holds no claim")
    expires = max(claim["lease_expires"], now + lease)
    db.execute(
        "UPDATE claims SET lease_expires = ? WHERE mission_id = ? AND task_id = ?",
        (expires, mission, task),
    )
    db.execute(
        "UPDATE attempts SET dispatched_at = COALESCE(dispatched_at, ?) WHERE id = ?",
        (now, claim["attempt_id"]),
    )
    if state != "dispatched":
        db.execute(
            "UPDATE tasks SET state = 'dispatched', updated_at = ? WHERE mission_id = ? "
            "AND id = ?", (now, mission, task),
        )
        event(db, mission, task, "dispatched", attempt=number, actor=claim["holder"], at=now,
              agent=d.name, lease_expires=iso(expires))
    return int(claim["attempt_id"])


# --------------------------------------------------------------------------- after launch


def _call_row(db: sqlite3.Connection, session: str | None, tool_use_id: str | None,
              prompt_hash: str):
    """The dispatch a PostToolUse belongs to: by its tool_use_id; without one, by the prompt,
    and only when exactly one waiting dispatch has it (never "the latest")."""
    if tool_use_id:
        return db.execute(
            "SELECT * FROM agents WHERE session_id IS ? AND tool_use_id = ?",
            (session, tool_use_id),
        ).fetchone()
    rows = db.execute(
        "SELECT * FROM agents WHERE session_id IS ? AND prompt_hash = ? AND agent_id IS NULL "
        "AND ended_at IS NULL", (session, prompt_hash),
    ).fetchall()
    return rows[0] if len(rows) == 1 else None


def attach(conn: sqlite3.Connection, *, session: str | None, tool_use_id: str | None,
           prompt_hash: str, agent_id: str | None, output_file: str | None,
           status: str | None, failed: str | None, now: float):
    """Give the dispatch its agent id (PostToolUse), or end it (PostToolUseFailure)."""
    with Tx(conn) as db:
        if not has_agents(db):
            return None
        row = _call_row(db, session, tool_use_id, prompt_hash)
        if row is None:
            return None
        actor = "hook:" + (session or "session")[:8]
        if failed is not None:
            db.execute("UPDATE agents SET ended_at = COALESCE(ended_at, ?), end_note = ? "
                       "WHERE id = ?", (now, f"did not start: {failed}"[:500], row["id"]))
            event(db, row["mission_id"], row["task_id"], "agent-failed", attempt=row["attempt"],
                  actor=actor, at=now, tool_use=row["tool_use_id"], error=failed[:300])
            return row
        if agent_id is None or row["agent_id"] == agent_id:
            return row
        stop = db.execute("SELECT * FROM agent_stops WHERE agent_id = ?", (agent_id,)).fetchone()
        ended = stop["at"] if stop else (now if status == "completed" else None)
        db.execute(
            "UPDATE agents SET agent_id = ?, output_file = ?, launched_at = ?, "
            "ended_at = COALESCE(ended_at, ?), transcript_path = COALESCE(transcript_path, ?) "
            "WHERE id = ?",
            (agent_id, output_file, now, ended, stop["transcript_path"] if stop else None,
             row["id"]),
        )
        event(db, row["mission_id"], row["task_id"], "agent-launched", attempt=row["attempt"],
              actor=actor, at=now, agent=agent_id, name=row["name"], output=output_file)
        if stop is not None:
            db.execute("DELETE FROM agent_stops WHERE agent_id = ?", (agent_id,))
            event(db, row["mission_id"], row["task_id"], "agent-stopped", attempt=row["attempt"],
                  actor=actor, at=stop["at"], agent=agent_id, transcript=stop["transcript_path"])
        return row


def stopped(conn: sqlite3.Connection, *, agent_id: str, session: str | None,
            agent_type: str | None, transcript: str | None, now: float) -> str:
    """Record a SubagentStop: "recorded", "kept" (for a dispatch still waiting for its id)
    or "unknown" (an agent no plan dispatch started)."""
    with Tx(conn) as db:
        if not has_agents(db):
            return "unknown"
        row = db.execute(
            "SELECT * FROM agents WHERE agent_id = ? AND ended_at IS NULL ORDER BY id DESC "
            "LIMIT 1", (agent_id,),
        ).fetchone()
        actor = "hook:" + (session or "session")[:8]
        if row is not None:
            db.execute("UPDATE agents SET ended_at = ?, transcript_path = ? WHERE id = ?",
                       (now, transcript, row["id"]))
            event(db, row["mission_id"], row["task_id"], "agent-stopped", attempt=row["attempt"],
                  actor=actor, at=now, agent=agent_id, transcript=transcript)
            return "recorded"
        waiting = db.execute(
            "SELECT 1 FROM agents WHERE session_id IS ? AND agent_id IS NULL AND ended_at IS NULL "
            "LIMIT 1", (session,),
        ).fetchone()
        if waiting is None:
            return "unknown"
        db.execute(
            "INSERT OR REPLACE INTO agent_stops (agent_id, session_id, agent_type, "
            "transcript_path, at) VALUES (?, ?, ?, ?, ?)",
            (agent_id, session, agent_type, transcript, now),
        )
        return "kept"


# --------------------------------------------------------------------------- reading


def open_missions(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM missions WHERE finished_at IS NULL ORDER BY created_at"
    )]


def in_flight(conn: sqlite3.Connection, mission: str, now: float) -> list[dict]:
    """Each claimed or dispatched task with its lease and latest agent (None when unknown)."""
    agents = has_agents(conn)
    rows = conn.execute(
        "SELECT t.id, t.attempt, t.max_retries, t.state, c.attempt_id, c.holder, c.claimed_at, "
        "c.lease_expires FROM tasks t JOIN claims c ON c.mission_id = t.mission_id "
        "AND c.task_id = t.id WHERE t.mission_id = ? ORDER BY t.seq", (mission,),
    ).fetchall()
    out = []
    for row in rows:
        agent = conn.execute(
            "SELECT agent_id, name, session_id, requested_at, ended_at, tool_use_id FROM agents "
            "WHERE attempt_id = ? ORDER BY id DESC LIMIT 1", (row["attempt_id"],),
        ).fetchone() if agents else None
        out.append({
            "task": row["id"], "attempt": row["attempt"], "max": 1 + row["max_retries"],
            "state": row["state"], "holder": row["holder"], "since": row["claimed_at"],
            "expired": row["lease_expires"] <= now,
            "agent": dict(agent) if agent is not None else None,
        })
    return out
