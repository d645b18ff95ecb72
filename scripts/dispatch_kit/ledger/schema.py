"""The ledger's tables, and the states a task moves through: one definition for every backend.

Kept apart from the code that writes rows so the whole data model reads in one place;
``events`` is append-only by trigger, so history cannot be rewritten by any caller.
``SCHEMA`` is written in SQLite's dialect and :func:`portable_tables` renders the same
tables for PostgreSQL (types only), so the two backends cannot drift apart; what only
one engine needs (its triggers) lives with that backend.

Migrations: ``meta.schema_version`` names the layout. A later change bumps
``SCHEMA_VERSION`` and adds a step to ``MIGRATIONS`` (version → statements run in
one transaction by ``open``), so a ledger written by an older dispatch-kit is
upgraded in place the first time a newer one opens it; a newer ledger than the
code knows is refused. Additive tables (``CREATE TABLE IF NOT EXISTS``, as the
session guards' ``agents``) need no version bump.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.guards.tables import AGENTS_SCHEMA

SCHEMA_VERSION = 1
STATES = ("ready", "claimed", "dispatched", "verified", "failed", "skipped")
IN_FLIGHT = ("claimed", "dispatched")
TERMINAL = ("verified", "failed", "skipped")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS missions (
    id          TEXT PRIMARY KEY,
    plan_path   TEXT NOT NULL,
    plan_hash   TEXT NOT NULL,
    max_tasks   INTEGER NOT NULL,
    goal        TEXT NOT NULL,
    workspace   TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    mission_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    title           TEXT NOT NULL,
    type            TEXT NOT NULL,
    cwd             TEXT NOT NULL,
    task_hash       TEXT NOT NULL,
    timeout         REAL NOT NULL,
    max_retries     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'ready'
                    CHECK (state IN ('ready','claimed','dispatched','verified','failed','skipped')),
    attempt         INTEGER NOT NULL DEFAULT 1,
    last_error      TEXT,
    last_check      TEXT,
    skipped_because TEXT,
    started_at      REAL,
    finished_at     REAL,
    updated_at      REAL NOT NULL,
    PRIMARY KEY (mission_id, id)
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (mission_id, state, seq);
CREATE TABLE IF NOT EXISTS deps (
    mission_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    dep_id     TEXT NOT NULL,
    PRIMARY KEY (mission_id, task_id, dep_id)
);
CREATE INDEX IF NOT EXISTS deps_by_dep ON deps (mission_id, dep_id);
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id    TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    number        INTEGER NOT NULL,
    holder        TEXT NOT NULL,
    host          TEXT,
    claimed_at    REAL NOT NULL,
    dispatched_at REAL,
    ended_at      REAL,
    outcome       TEXT CHECK (outcome IS NULL OR outcome IN
                  ('verified','failed','lost','released','interrupted')),
    pid           INTEGER,
    exit_code     INTEGER,
    timed_out     INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    log_path      TEXT,
    prompt_path   TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts (mission_id, task_id, number);
CREATE TABLE IF NOT EXISTS claims (
    mission_id    TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    attempt_id    INTEGER NOT NULL,
    holder        TEXT NOT NULL,
    holder_pid    INTEGER,
    holder_start  TEXT,
    host          TEXT NOT NULL,
    claimed_at    REAL NOT NULL,
    lease_expires REAL NOT NULL,
    pid           INTEGER,
    pid_start     TEXT,
    PRIMARY KEY (mission_id, task_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL NOT NULL,
    mission_id TEXT NOT NULL,
    task_id    TEXT,
    kind       TEXT NOT NULL,
    attempt    INTEGER,
    actor      TEXT,
    detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_task ON events (mission_id, task_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
""" + AGENTS_SCHEMA


# The tables every ledger has held since version 1: one missing means the file is not a
# ledger, or one whose history was lost (recreating it empty would hide that). Additive
# tables (the guards' ``agents``) are not listed: an older ledger may not have them yet.
CORE_TABLES = ("meta", "missions", "tasks", "deps", "attempts", "claims", "events")

# version N → the statements that take a ledger from version N to N + 1 (none yet).
MIGRATIONS: dict[int, tuple[str, ...]] = {}

_PG_TYPES = (
    (re.compile(r"INTEGER PRIMARY KEY AUTOINCREMENT"),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
)


def portable_tables(dialect: str) -> list[str]:
    """The schema's tables and indexes for ``dialect`` (``sqlite`` or ``postgresql``),
    without triggers (each backend writes its own: their syntax has nothing in common)."""
    statements = [s for s in split_sql(SCHEMA) if not s.startswith("CREATE TRIGGER")]
    if dialect == "sqlite":
        return statements
    out = []
    for statement in statements:
        for pattern, replacement in _PG_TYPES:
            statement = pattern.sub(replacement, statement)
        out.append(statement)
    return out


def split_sql(script: str) -> list[str]:
    """Statements of the schema, keeping trigger bodies whole (they contain ';')."""
    statements, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        joined = "\n".join(buf).strip()
        if joined.endswith(";") and sqlite3.complete_statement(joined):
            statements.append(joined)
            buf = []
    return statements


def schema_version_of(value: object, where: str) -> int:
    """``meta.schema_version`` as a number, whichever engine stored it.

    Both backends read it before anything else, so a damaged or foreign value is named in
    one line (InputError) instead of failing later in a migration or a query.
    """
    text = value if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InputError(f"not a dispatch-kit ledger (schema_version {shown!r} in its meta "
                         "table is not a version number)", path=where)
    return int(text)


def needs_migration(version: int, where: str) -> bool:
    """Whether a ledger at ``version`` must be migrated before use; InputError when this
    dispatch-kit cannot read it (newer than it knows, or no migration path from it)."""
    if version == SCHEMA_VERSION:
        return False
    if version < SCHEMA_VERSION and all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
        return True
    raise InputError(f"ledger schema version {version} is not {SCHEMA_VERSION}; "
                     "this dispatch-kit cannot read it", path=where)


def migrate(db: Any, current: int) -> None:
    """Apply the migration steps from ``current`` on ``db`` (inside the caller's
    transaction, with whatever lock its engine needs) and record the new version."""
    for step in range(current, SCHEMA_VERSION):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
