"""The SQLite backend: one file on one machine, WAL mode, racers queue on ``BEGIN IMMEDIATE``.

Racing executors are the normal case, not an edge case: WAL mode and a busy
timeout make them queue, and ``BEGIN IMMEDIATE`` takes the write lock up front,
so the first writer wins outright and no row lock is needed (``for_update`` is
empty). The clock is this machine's: every holder of a SQLite ledger shares it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.schema import (
    CORE_TABLES,
    SCHEMA,
    SCHEMA_VERSION,
    migrate,
    needs_migration,
    schema_version_of,
    split_sql,
)

FOLLOW_POLL_S = 0.25  # a stat() of two files each time; the ledger is read only on a change


@cache
def _core_columns() -> dict[str, set[str]]:
    """The columns of each core table, as the schema creates them (in a scratch database)."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in split_sql(SCHEMA):
            conn.execute(statement)
        return {table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                for table in CORE_TABLES}
    finally:
        conn.close()



def files_stamp(path: str) -> tuple:
    """Size and mtime of the database and its WAL: a commit changes one of them (what a
    reader that cannot be notified watches, a few stat calls a second)."""
    out = []
    for name in (path, path + "-wal"):
        try:
            info = os.stat(name)
            out.append((info.st_size, info.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)

class SqliteStore:
    """An open SQLite ledger file (see :class:`dispatch_kit.ledger.backends.Store`)."""

    dialect = "sqlite"
    for_update = ""
    skip_locked = ""
    next_attempt_id = None  # INSERT ... RETURNING is in-process: nothing to save

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path: Path | None = path
        self.where = str(path)
        self.conn = conn
        self._stamp: tuple | None = None

    @classmethod
    def open(cls, path: Path, *, create: bool = False, busy_timeout: float = 60.0) -> SqliteStore:
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
            store = cls(path, conn)
            empty = store._check_identity(create)
            if create and empty and not fresh:  # an empty file: the ledger starts here
                conn.execute("PRAGMA journal_mode=WAL")
            if create:
                with store.transaction() as db:
                    for statement in split_sql(SCHEMA):
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                        "ON CONFLICT DO NOTHING",
                        (str(SCHEMA_VERSION),),
                    )
            store._check_schema()
            store._check_columns()
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise InputError("not a usable dispatch-kit ledger (not an SQLite database "
                                 "file)", path=str(path)) from None
            said = " ".join(str(exc).split())  # SQLite may quote a multi-line schema
            said = said if len(said) <= 200 else said[:200] + "..."
            raise InputError(f"not a usable dispatch-kit ledger ({said})", path=str(path)) from None
        except UnicodeDecodeError:  # SQLite's own message quotes bytes of a damaged schema
            raise InputError("not a usable dispatch-kit ledger (database disk image is "
                             "malformed: its schema is not UTF-8)", path=str(path)) from None
        except OSError as exc:
            raise InputError(f"cannot open ledger: {exc.strerror or exc}", path=str(path)) from None
        return store

    def _check_identity(self, create: bool) -> bool:
        """Whether the file holds no table at all; InputError unless it is empty or a ledger.

        Run before anything is written: ``run`` and ``ledger init`` create the
        tables they miss, which must never happen to another program's
        database, nor to a ledger that lost some of its tables.
        """
        tables = {row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            if create:
                return True
            raise InputError("not a dispatch-kit ledger (an empty SQLite database: no meta "
                             "table); create one with `dispatch-kit ledger init PLAN`",
                             path=self.where)
        if "meta" not in tables:
            raise InputError("not a dispatch-kit ledger (no meta table)", path=self.where)
        self._schema_version()
        missing = sorted(set(CORE_TABLES) - tables)
        if missing:
            raise InputError(f"a damaged dispatch-kit ledger: table{'s' * (len(missing) > 1)} "
                             f"{', '.join(missing)} missing", path=self.where)
        return False

    def _schema_version(self) -> int:
        """``meta.schema_version`` as a number; InputError naming what is wrong with it."""
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise InputError("not a dispatch-kit ledger (no meta table)",
                                 path=self.where) from None
            raise InputError(
                f"not a dispatch-kit ledger (its meta table has another layout: {exc})",
                path=self.where) from None
        if row is None:
            raise InputError("not a dispatch-kit ledger (no schema_version in its meta table)",
                             path=self.where)
        return schema_version_of(row[0], self.where)

    def _check_columns(self) -> None:
        """Each core table has the columns of the schema (one query); InputError otherwise."""
        found: dict[str, set[str]] = {}
        for table, column in self.conn.execute(
                "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
                "WHERE m.type = 'table'"):
            found.setdefault(table, set()).add(column)
        for table, columns in _core_columns().items():
            missing = sorted(columns - found.get(table, set()))
            if missing:
                raise InputError(
                    f"a damaged dispatch-kit ledger: table {table} has no column "
                    f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}",
                    path=self.where)

    def _check_schema(self) -> None:
        version = self._schema_version()
        if needs_migration(version, self.where):
            with self.transaction() as db:
                migrate(db, version)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the lock is taken up front, so racers queue at BEGIN."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def now(self) -> float:
        return time.time()

    def lock_mission(self, db: sqlite3.Connection, mission_id: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already holds the whole file."""

    def _files_stamp(self) -> tuple:
        return files_stamp(self.where)

    def wait_for_events(self, timeout: float) -> bool:
        """SQLite cannot notify a reader: watch the file and its WAL (size and mtime, a few
        stat calls a second) and report a change, so the caller queries only then.

        The first call takes the files' stamp and returns at once, as PostgreSQL's first
        call starts listening: the caller reads again, so a commit that landed after its
        first read but before the stamp is not missed (it is not a change to the stamp)."""
        if self._stamp is None:
            self._stamp = self._files_stamp()
            return True
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(min(FOLLOW_POLL_S, max(0.0, deadline - time.monotonic())))
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        self.conn.close()
