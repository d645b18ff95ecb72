"""Span identities kept in the ledger, so the process that ends a span need not be the one
that started it.

A detached worker's attempt ends after its ``run --detach`` exited; a worker left
by a killed runner ends under the next one. Each row holds what emitting the span
later needs (ids, parent, start) and whether it was emitted. The table is created
on first use by a traced process: a ledger never traced has none, and the ledger's
own schema stays as it is. ``emitted`` is claimed with a conditional UPDATE, so two
processes flushing at once emit a span once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

TABLE = """
CREATE TABLE IF NOT EXISTS trace_spans (
    mission_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    trace_id   TEXT NOT NULL,
    span_id    TEXT NOT NULL,
    parent_id  TEXT,
    tracestate TEXT,
    label      TEXT NOT NULL,
    detail     TEXT,
    start_ns   INTEGER NOT NULL,
    pid        INTEGER,
    pid_start  TEXT,
    emitted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mission_id, scope)
)
"""


@dataclass(frozen=True)
class StoredSpan:
    """One row of ``trace_spans``: ids as integers, times in nanoseconds since the epoch."""

    mission_id: str
    scope: str
    trace_id: int
    span_id: int
    parent_id: int | None
    tracestate: str | None
    label: str
    start_ns: int
    detail: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    emitted: bool = False

    @classmethod
    def of(cls, row: sqlite3.Row | tuple) -> StoredSpan:
        (mission, scope, trace_id, span_id, parent_id, tracestate, label, detail, start_ns,
         pid, pid_start, emitted) = tuple(row)
        return cls(mission, scope, int(trace_id, 16), int(span_id, 16),
                   int(parent_id, 16) if parent_id else None, tracestate, label, int(start_ns),
                   detail, pid, pid_start, bool(emitted))


_COLUMNS = ("mission_id, scope, trace_id, span_id, parent_id, tracestate, label, detail, "
            "start_ns, pid, pid_start, emitted")


def ensure(conn: sqlite3.Connection) -> None:
    conn.execute(TABLE)


def insert(conn: sqlite3.Connection, span: StoredSpan) -> bool:
    """Store ``span`` unless its scope already has one; True when this call stored it."""
    cur = conn.execute(
        f"INSERT OR IGNORE INTO trace_spans ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
        (span.mission_id, span.scope, f"{span.trace_id:032x}", f"{span.span_id:016x}",
         f"{span.parent_id:016x}" if span.parent_id else None, span.tracestate, span.label,
         span.detail, span.start_ns, span.pid, span.pid_start, int(span.emitted)),
    )
    return cur.rowcount == 1


def get(conn: sqlite3.Connection, mission: str, scope: str) -> StoredSpan | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM trace_spans WHERE mission_id = ? AND scope = ?",
                       (mission, scope)).fetchone()
    return StoredSpan.of(row) if row is not None else None


def pending(conn: sqlite3.Connection, mission: str, prefix: str) -> list[StoredSpan]:
    """Rows of ``prefix`` scopes not emitted yet."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM trace_spans WHERE mission_id = ? AND emitted = 0 "
        "AND substr(scope, 1, ?) = ?", (mission, len(prefix), prefix)).fetchall()
    return [StoredSpan.of(row) for row in rows]


def claim_emit(conn: sqlite3.Connection, mission: str, scope: str) -> bool:
    """Mark a row emitted; True only for the one caller that flipped it."""
    cur = conn.execute("UPDATE trace_spans SET emitted = 1 WHERE mission_id = ? AND scope = ? "
                       "AND emitted = 0", (mission, scope))
    return cur.rowcount == 1
