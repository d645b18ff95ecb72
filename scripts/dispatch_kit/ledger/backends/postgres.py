"""The PostgreSQL backend: one mission shared by many machines.

What differs from SQLite, all here: connecting by URL (psycopg 3, imported only
when a PostgreSQL URL is opened), row locks instead of a file lock (a write
transaction locks the task row it decides on with ``FOR UPDATE``; racers for
the next task pass over locked rows with ``SKIP LOCKED`` instead of queueing),
the database's clock for leases (``clock_timestamp()``: every host compares
against the same clock, whatever its own says), mission-wide changes behind a
transaction-scoped advisory lock, the append-only and ``NOTIFY`` triggers on
``events``, and ``LISTEN`` for ``ledger events --follow``.

Isolation is READ COMMITTED: each statement sees what committed before it,
and every decision is taken on a row locked first, so two transactions never
both act on one task.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.backends import redact
from dispatch_kit.ledger.schema import MIGRATIONS, SCHEMA_VERSION, portable_tables

CHANNEL = "dispatch_kit_events"
SCHEMA_LOCK = 0x64697370  # advisory lock key for creating or migrating the schema

TRIGGERS = (
    "CREATE OR REPLACE FUNCTION dispatch_kit_events_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger events are append-only'; END $$",
    "CREATE OR REPLACE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION dispatch_kit_events_append_only()",
    "CREATE OR REPLACE FUNCTION dispatch_kit_events_notify() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('{CHANNEL}', NEW.mission_id); "
    "RETURN NEW; END $$",
    "CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events "
    "FOR EACH ROW EXECUTE FUNCTION dispatch_kit_events_notify()",
)


class Row(tuple):
    """A result row indexed by position or by column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


_ROW_TYPES: dict[tuple[str, ...], type[Row]] = {}


def _row_factory(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    row_type = _ROW_TYPES.get(names)
    if row_type is None:  # one class per column list, not per query
        row_type = _ROW_TYPES[names] = type(
            "Row", (Row,), {"_index": {n: i for i, n in enumerate(names)}})

    def make(values: Sequence[Any]) -> Row:
        return row_type(values)

    return make


_TRANSLATED: dict[str, str] = {}


def translate(sql: str) -> str:
    """The ledger's portable SQL (``?`` placeholders) in psycopg's style (``%s``)."""
    out = _TRANSLATED.get(sql)
    if out is None:
        out = _TRANSLATED[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


class Connection:
    """A psycopg connection that speaks the ledger's portable SQL, as ``sqlite3`` does."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        cur = self.raw.cursor(row_factory=_row_factory)
        if params:
            cur.execute(translate(sql), params)
        else:
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cur = self.raw.cursor(row_factory=_row_factory)
        if rows:
            cur.executemany(translate(sql), rows)
        return cur


class PostgresStore:
    """An open PostgreSQL ledger (see :class:`dispatch_kit.ledger.backends.Store`)."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, raw: psycopg.Connection) -> None:
        self.url = url
        self.where = redact(url)
        self.path = None
        self.conn = Connection(raw)
        self._listener: psycopg.Connection | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> PostgresStore:
        try:
            raw = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot connect to the ledger database: {text}",
                             path=redact(url)) from None
        store = cls(url, raw)
        try:
            if create:
                store._create()
            store._check_schema()
        except BaseException:
            raw.close()
            raise
        return store

    def _create(self) -> None:
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            if db.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
                return
            for statement in portable_tables(self.dialect):
                db.execute(statement)
            for statement in TRIGGERS:
                db.execute(statement)
            db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                       "ON CONFLICT DO NOTHING", (str(SCHEMA_VERSION),))

    def _check_schema(self) -> None:
        if self.conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            raise InputError(
                "no ledger in this database; run `dispatch-kit ledger init PLAN --db URL` first",
                path=self.where,
            )
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise InputError("not a dispatch-kit ledger (no schema version)", path=self.where)
        version = int(row[0])
        if version < SCHEMA_VERSION and all(v in MIGRATIONS for v in
                                            range(version, SCHEMA_VERSION)):
            with self.transaction() as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
                current = int(db.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
                for step in range(current, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        db.execute(statement)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                           (str(SCHEMA_VERSION),))
            return
        if version != SCHEMA_VERSION:
            raise InputError(
                f"ledger schema version {version} is not {SCHEMA_VERSION}; "
                "this dispatch-kit cannot read it",
                path=self.where,
            )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; the rows it locks stay locked until it ends.

        (Pipeline mode, sending the writes after a claim's decision together with the
        COMMIT, measured no faster on loopback in bench/bench_ledger.py: each statement
        waits for its answer, so an error names the statement that caused it.)"""
        with self.conn.raw.transaction():
            yield self.conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One consistent snapshot for several SELECTs."""
        self.conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield self.conn
        finally:
            self.conn.raw.execute("COMMIT")

    def now(self) -> float:
        return float(self.conn.raw.execute(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()[0])

    def lock_mission(self, db: Connection, mission_id: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
                   ("dispatch-kit mission " + mission_id,))

    def wait_for_events(self, timeout: float) -> bool:
        """Wait for a ``NOTIFY`` from the events trigger. The first call starts listening
        and returns at once, so the caller reads again with no event slipping between."""
        if self._listener is None:
            self._listener = psycopg.connect(self.url, autocommit=True)
            self._listener.execute(f"LISTEN {CHANNEL}")
            return True
        woke = False
        for _ in self._listener.notifies(timeout=timeout, stop_after=1):
            woke = True
        return woke

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.conn.raw.close()
