"""Opening a ledger database and running transactions on it.

Racing executors are the normal case, not an edge case: WAL mode and a busy timeout make
them queue, and ``BEGIN IMMEDIATE`` makes the first writer win outright.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.schema import SCHEMA, SCHEMA_VERSION, split_sql


def append_event(
    db: sqlite3.Connection,
    mission: str,
    task: str | None,
    kind: str,
    *,
    attempt: int | None = None,
    actor: str | None = None,
    at: float | None = None,
    **detail: object,
) -> None:
    """Append one row to ``events``: every state change leaves one, in the same transaction."""
    db.execute(
        "INSERT INTO events (at, mission_id, task_id, kind, attempt, actor, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            at if at is not None else time.time(),
            mission,
            task,
            kind,
            attempt,
            actor,
            json.dumps({k: v for k, v in detail.items() if v is not None}, default=str),
        ),
    )


class LedgerConnection:
    """An open ledger database: opening, the schema check, and transactions.

    Every state change elsewhere runs inside ``_tx`` and appends an event, so this is the
    one place that decides how the database is locked.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False, busy_timeout: float = 60.0) -> Self:
        path = Path(path)
        if path.is_dir():
            raise InputError("is a folder, not a ledger database file", path=str(path))
        if not create and not path.exists():
            raise InputError(
                "no ledger here; run `dispatch-kit ledger init PLAN` first (or pass --db)",
                path=str(path),
            )
        try:
            if create:
                fresh = not path.exists()
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.parent.name == ".dispatch" and not (path.parent / ".gitignore").exists():
                    (path.parent / ".gitignore").write_text("# dispatch-kit run state\n*\n")
                conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
                if fresh:
                    conn.execute("PRAGMA journal_mode=WAL")
            else:
                uri = path.resolve().as_uri() + "?mode=rw"
                conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            ledger = cls(path, conn)
            if create:
                with ledger._tx() as db:
                    for statement in split_sql(SCHEMA):
                        db.execute(statement)
                    db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            ledger._check_schema()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a usable dispatch-kit ledger ({exc})", path=str(path)) from None
        except OSError as exc:
            raise InputError(f"cannot open ledger: {exc.strerror or exc}", path=str(path)) from None
        return ledger

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None:
            raise InputError("not a dispatch-kit ledger (no schema version)", path=str(self.path))
        if int(row[0]) != SCHEMA_VERSION:
            raise InputError(
                f"ledger schema version {row[0]} is not {SCHEMA_VERSION}; "
                "this dispatch-kit cannot read it",
                path=str(self.path),
            )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the lock is taken up front, so racers queue at BEGIN."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    _event = staticmethod(append_event)
