"""The local journal: what the hooks record when the mission's ledger is on PostgreSQL.

A hook runs inside the user's session on every dispatch, within ~50 ms; on
a PostgreSQL ledger it would also pay the driver's import (~120-175 ms) and
a connection. So a hook never talks to the server: it appends the event to
``.dispatch/journal.db`` (SQLite, standard library only, one ``BEGIN
IMMEDIATE`` transaction), and the ledger imports the journal later
(``dispatch-kit ledger import-journal``, and every ``ledger`` command on that
ledger before it reads or writes: :mod:`dispatch_kit.ledger.journal_import`).

One table, one row per hook event: ``requested`` (a dispatch naming a plan
task), ``launched`` (its agent id), ``failed`` (the Agent call failed) and
``stopped`` (a SubagentStop). Each row has a random ``uid``: the ledger
applies each uid once, however many importers race. ``ledger`` is the
ledger's URL without its password, so one journal can serve several ledgers.

The duplicate refusal reads the journal: a dispatch of a task is refused
while a request of it is live here (not failed, its agent not stopped, its
lease not over; a request whose agent id has not come counts for
``PENDING_WINDOW_S``). That holds duplicates within one machine; across
machines the ledger's claims still hold each task to one worker. Until an
import tells the journal the claim's real lease, a request's lease is
``DEFAULT_LEASE_S`` (a task's default timeout).
"""

from __future__ import annotations

import os
import time

try:  # as guards.store: the C module, without the package's datetime import
    import _sqlite3 as sqlite3
except ImportError:  # pragma: no cover
    import sqlite3

from dispatch_kit.guards import locate
from dispatch_kit.guards.store import Tx

NAME = locate.JOURNAL
BUSY_TIMEOUT_S = 10.0
PENDING_WINDOW_S = 600.0  # as guards.store: a dispatch waiting for its agent id
DEFAULT_LEASE_S = 600.0  # a plan task's default timeout, until an import knows the claim's
KINDS = ("requested", "launched", "failed", "stopped")

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    uid             TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('requested','launched','failed','stopped')),
    ledger          TEXT NOT NULL,
    mission         TEXT,
    task            TEXT,
    attempt         INTEGER,
    request         TEXT,
    session_id      TEXT,
    tool_use_id     TEXT,
    prompt_hash     TEXT,
    name            TEXT,
    agent_type      TEXT,
    agent_id        TEXT,
    output_file     TEXT,
    status          TEXT,
    transcript_path TEXT,
    error           TEXT,
    host            TEXT,
    at              REAL NOT NULL,
    live_until      REAL,
    imported_at     REAL,
    import_note     TEXT
);
CREATE INDEX IF NOT EXISTS journal_by_task ON journal (kind, mission, task);
CREATE INDEX IF NOT EXISTS journal_by_request ON journal (request);
CREATE INDEX IF NOT EXISTS journal_by_agent ON journal (agent_id);
CREATE INDEX IF NOT EXISTS journal_by_call ON journal (session_id, tool_use_id);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (imported_at, seq)
"""


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password (as ``ledger.backends.redact``, without ``re``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?":
        found = rest.find(stop)
        if 0 <= found < end:
            end = found
    auth = rest[:end]
    colon = auth.find(":")
    at = auth.find("@", colon + 1) if colon >= 0 else -1
    if at < 0 or "@" in auth[:colon]:
        return url
    return f"{scheme}://{auth[:colon]}:***@{rest[at + 1:]}"


def target(ledger: str | None, environ) -> str | None:
    """The PostgreSQL ledger (its URL without password) a hook would record into, or None:
    ``$DISPATCH_KIT_LEDGER`` when set, else the dispatch line's ``ledger=`` value."""
    env = environ.get("DISPATCH_KIT_LEDGER")
    value = env if env else ledger
    return redact(value) if is_url(value) else None


find = locate.journal  # ``.dispatch/journal.db`` in ``cwd`` or the nearest parent


def for_writing(cwd: str) -> str:
    """The journal a hook appends to: the nearest one, else a new one in ``cwd/.dispatch``."""
    found = find(cwd)
    if found:
        return found
    return os.path.join(locate.state_folder(cwd), NAME)


def connect(path: str):
    """The journal at ``path``, made when missing; WAL, so readers never wait for a writer."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    if conn.execute("PRAGMA user_version").fetchone()[0] != 1:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != 1:
                for statement in SCHEMA.strip().split(";"):
                    conn.execute(statement)
                conn.execute("PRAGMA user_version = 1")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def new_uid() -> str:
    return os.urandom(16).hex()


def append(db, kind: str, ledger: str, at: float, **fields: object) -> str:
    """Add one row (inside the caller's transaction); returns its uid."""
    uid = new_uid()
    columns = ["uid", "kind", "ledger", "at", "host"]
    values: list[object] = [uid, kind, ledger, at, os.uname().nodename]
    for key, value in fields.items():
        if value is not None:
            columns.append(key)
            values.append(value)
    db.execute(f"INSERT INTO journal ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(values))})", values)
    return uid


LIVE = (
    "SELECT r.uid, r.ledger, r.mission, r.task, r.attempt, r.name, r.tool_use_id, r.session_id, "
    "r.at AS requested_at, r.live_until, l.agent_id FROM journal r "
    "LEFT JOIN journal l ON l.kind = 'launched' AND l.request = r.uid "
    "WHERE r.kind = 'requested' AND r.live_until > ? "
    "AND NOT EXISTS (SELECT 1 FROM journal f WHERE f.kind = 'failed' AND f.request = r.uid) "
    "AND (l.agent_id IS NULL OR NOT EXISTS (SELECT 1 FROM journal s WHERE s.kind = 'stopped' "
    "AND s.agent_id = l.agent_id AND s.at >= r.at)) "
    "AND (l.agent_id IS NOT NULL OR r.at > ?)"
)


def live(db, now: float, *, ledger: str | None = None, mission: str | None = None,
         task: str | None = None) -> list:
    """The live requests (newest first), optionally of one task."""
    sql, params = LIVE, [now, now - PENDING_WINDOW_S]
    if ledger is not None:
        sql += " AND r.ledger = ?"
        params.append(ledger)
    if mission is not None:
        sql += " AND r.mission = ? AND r.task = ?"
        params += [mission, task]
    return db.execute(sql + " ORDER BY r.seq DESC", params).fetchall()


def request_of(db, session: str | None, tool_use_id: str | None, prompt_hash: str):
    """The request a PostToolUse belongs to: by tool_use_id; else by the prompt, only when
    exactly one request of the session waits with it (never "the latest")."""
    if tool_use_id:
        return db.execute(
            "SELECT * FROM journal WHERE kind = 'requested' AND session_id IS ? "
            "AND tool_use_id = ? ORDER BY seq DESC LIMIT 1", (session, tool_use_id),
        ).fetchone()
    rows = db.execute(
        "SELECT * FROM journal r WHERE kind = 'requested' AND session_id IS ? "
        "AND prompt_hash = ? AND NOT EXISTS (SELECT 1 FROM journal x WHERE x.request = r.uid)",
        (session, prompt_hash),
    ).fetchall()
    return rows[0] if len(rows) == 1 else None


# --------------------------------------------------------------------------- the hooks' writes


def record_dispatch(path: str, ledger: str, d, *, refuse: bool, record: bool,
                    now: float) -> tuple[str, object]:
    """("refused", live row) | ("recorded", None) | ("skipped", why): ``d`` is a
    :class:`dispatch_kit.guards.store.Dispatch`."""
    conn = connect(path)
    try:
        with Tx(conn):
            if d.tool_use_id and conn.execute(
                "SELECT 1 FROM journal WHERE kind = 'requested' AND session_id IS ? "
                "AND tool_use_id = ?", (d.session, d.tool_use_id),
            ).fetchone():
                return "recorded", "already recorded"
            if refuse:
                found = live(conn, now, ledger=ledger, mission=d.mission, task=d.task)
                if found:
                    return "refused", found[0]
            if not record:
                return "skipped", "recording is off"
            append(conn, "requested", ledger, now, mission=d.mission, task=d.task,
                   attempt=d.attempt, session_id=d.session, tool_use_id=d.tool_use_id,
                   prompt_hash=d.prompt_hash, name=d.name, agent_type=d.agent_type,
                   live_until=now + DEFAULT_LEASE_S)
    finally:
        conn.close()
    return "recorded", None


def attach(path: str, ledger: str, *, session: str | None, tool_use_id: str | None,
           prompt_hash: str, agent_id: str | None, output_file: str | None,
           status: str | None, failed: str | None, now: float) -> bool:
    """Journal a PostToolUse (launched) or PostToolUseFailure (failed) of a journaled
    request; False when the journal has no such request."""
    conn = connect(path)
    try:
        with Tx(conn):
            row = request_of(conn, session, tool_use_id, prompt_hash)
            done = row is not None and (failed is not None or agent_id is not None)
            if done and conn.execute(
                "SELECT 1 FROM journal WHERE request = ? AND kind = ? AND agent_id IS ?",
                (row["uid"], "failed" if failed is not None else "launched",
                 None if failed is not None else agent_id),
            ).fetchone():
                done = False  # the same event, delivered again
            if done:
                fields = dict(mission=row["mission"], task=row["task"], attempt=row["attempt"],
                              request=row["uid"], session_id=session,
                              tool_use_id=tool_use_id, prompt_hash=prompt_hash)
                if failed is not None:
                    append(conn, "failed", row["ledger"], now, error=failed[:500], **fields)
                else:
                    append(conn, "launched", row["ledger"], now, agent_id=agent_id,
                           output_file=output_file, status=status, **fields)
    finally:
        conn.close()
    return done


def stopped(path: str, *, agent_id: str, session: str | None, agent_type: str | None,
            transcript: str | None, now: float) -> bool:
    """Journal a SubagentStop of an agent a journaled dispatch launched, or one that may
    be (a foreground agent stops before its PostToolUse); False for any other agent."""
    conn = connect(path)
    try:
        with Tx(conn):
            ours = conn.execute(
                "SELECT ledger, mission, task, attempt FROM journal WHERE kind = 'launched' "
                "AND agent_id = ? ORDER BY seq DESC LIMIT 1", (agent_id,),
            ).fetchone()
            if ours is None:
                ours = conn.execute(
                    "SELECT ledger, NULL AS mission, NULL AS task, NULL AS attempt "
                    "FROM journal r WHERE kind = 'requested' AND session_id IS ? "
                    "AND at > ? AND NOT EXISTS (SELECT 1 FROM journal x "
                    "WHERE x.request = r.uid) ORDER BY seq DESC LIMIT 1",
                    (session, now - PENDING_WINDOW_S),
                ).fetchone()
            if ours is not None:
                append(conn, "stopped", ours["ledger"], now, mission=ours["mission"],
                       task=ours["task"], attempt=ours["attempt"], session_id=session,
                       agent_id=agent_id, agent_type=agent_type, transcript_path=transcript)
    finally:
        conn.close()
    return ours is not None


def read_live(path: str, now: float | None = None) -> list:
    """The live requests of the journal at ``path`` (for SessionStart and Stop)."""
    conn = connect(path)
    try:
        return [dict(zip(row.keys(), tuple(row), strict=True))
                for row in live(conn, time.time() if now is None else now)]
    finally:
        conn.close()
