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
from psycopg.types.numeric import FloatDumper

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.backends import redact
from dispatch_kit.ledger.schema import (
    SCHEMA_VERSION,
    migrate,
    needs_migration,
    portable_tables,
    schema_version_of,
)

CHANNEL = "dispatch_kit_events"
CLOCK = "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8"  # the leases' clock
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
    _names: tuple[str, ...]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if type(key) is str:
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._names


_ROW_TYPES: dict[tuple[bytes, ...], type[Row]] = {}


def _row_factory(cursor: Any) -> Any:
    """The row class for the cursor's current result: one class per column list.

    Looked up by the result's raw column names (``fname``), which cost a runner far less
    per statement than ``cursor.description`` (a Column object per column, on every
    statement); the class itself makes the rows."""
    result = cursor.pgresult
    key = tuple(map(result.fname, range(result.nfields))) if result is not None else ()
    row_type = _ROW_TYPES.get(key)
    if row_type is None:
        names = tuple(c.name for c in cursor.description or ())
        row_type = _ROW_TYPES[key] = type(
            "Row", (Row,), {"_index": {n: i for i, n in enumerate(names)}, "_names": names})
    return row_type


_TRANSLATED: dict[str, str | bytes] = {}


def translate(sql: str) -> str | bytes:
    """The ledger's portable SQL (``?`` placeholders) in psycopg's style (``%s``).

    ASCII statements are kept encoded, so psycopg does not encode them again on every
    execution (any client encoding PostgreSQL offers agrees on ASCII)."""
    out = _TRANSLATED.get(sql)
    if out is None:
        text = sql.replace("%", "%%").replace("?", "%s")
        out = _TRANSLATED[sql] = text.encode("ascii") if text.isascii() else text
    return out


class _Float8Literal(FloatDumper):
    """A float bound into a batch as ``'1.5'::float8``: a bare ``1.5`` is read by the server
    as ``numeric``, so a value selected back would come out a Decimal, not the float that
    server-side binding gives (and ``-0.0`` would lose its sign)."""

    def quote(self, obj: Any) -> bytes:
        value = bytes(super().quote(obj)).strip()
        return value if value.endswith(b"::float8") else b"'" + value + b"'::float8"


class _Deferred:
    """What ``execute`` returns for a write held back until the next round trip."""

    rowcount = -1

    def fetchone(self) -> Any:
        raise TypeError("a deferred write has no result; add RETURNING to read one")

    fetchall = fetchone


_DEFERRED = _Deferred()


class Result:
    """One statement's rows, read from a batch that carried several (see ``execute_together``)."""

    def __init__(self, cur: Any) -> None:
        self.rows = cur.fetchall() if cur.description is not None else []
        self.rowcount = cur.rowcount

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return list(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class Connection:
    """A psycopg connection that speaks the ledger's portable SQL, as ``sqlite3`` does.

    Outside a transaction a statement is sent alone (server-side binding, prepared after
    a few runs). Inside a write transaction, what a runner pays for is round trips and
    the driver's work per statement, so statements travel in batches: a write whose result
    nobody reads (INSERT, UPDATE or DELETE without RETURNING) is held and sent with the
    next statement or with the COMMIT, and the transaction's ``BEGIN`` (with the read of
    the database's clock) goes with its first statement. A batch is one query string of
    several statements, its values bound by psycopg on the client (``ClientCursor``), so
    it costs one send and one wait however many statements it carries. The statements
    run in the same order in the same transaction, so what every later read sees is
    unchanged; only an error in a held write is raised by the next statement (or the
    commit) instead of its own line, and the transaction is rolled back all the same. A
    claim, a dispatch or a verdict takes 2-3 round trips instead of 8-11: on a network
    where a round trip costs more than loopback's 0.03 ms, that is most of its latency.
    """

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw
        # While a write transaction is open: the writes not sent yet, values bound.
        self.held: list[str] | None = None
        self.pending_begin = False  # the BEGIN is not sent yet (see PostgresStore.transaction)
        self.begun_at: float | None = None  # the database's clock read with that BEGIN
        self._binder = psycopg.ClientCursor(raw)  # binds values into statements (mogrify)
        self._binder.adapters.register_dumper(float, _Float8Literal)

    def _bound(self, sql: str, params: Sequence[Any]) -> str:
        return self._binder.mogrify(translate(sql), params) if params else sql

    def _hold(self, sql: str, params: Sequence[Any]) -> bool:
        if self.held is None or "RETURNING" in sql:
            return False
        head = sql.lstrip()[:6].upper()
        if head not in ("INSERT", "UPDATE", "DELETE"):
            return False
        self.held.append(self._bound(sql, params))
        return True

    def _batch(self, last: Sequence[str]) -> Any:
        """The pending BEGIN and clock, the held writes, then ``last``, in one query string;
        the cursor, at the first of ``last``'s results."""
        parts = ["BEGIN", CLOCK] if self.pending_begin else []
        clock = self.pending_begin
        self.pending_begin = False
        parts += self.held or []
        if self.held is not None:
            self.held = []
        skip = len(parts)
        cur = psycopg.ClientCursor(self.raw, row_factory=_row_factory)
        cur.execute(";".join(parts + list(last)))
        for index in range(skip):
            if clock and index == 1:
                self.begun_at = float(cur.fetchone()[0])
            cur.nextset()
        return cur

    def flush(self, then: str | None = None) -> None:
        """Send what is held (and ``then``, a statement without parameters) at once."""
        if then == "COMMIT" and self.pending_begin and not self.held:
            self.pending_begin = False  # nothing ran: no transaction to begin or end
            return
        if self.held or self.pending_begin or then is not None:
            self._batch([then] if then is not None else [])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.held is None:  # outside a write transaction: alone, bound by the server
            cur = self.raw.cursor(row_factory=_row_factory)
            if params:
                cur.execute(translate(sql), params)
            else:
                cur.execute(sql)
            return cur
        if self._hold(sql, params):
            return _DEFERRED
        return self._batch([self._bound(sql, params)])

    def execute_together(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several statements in one round trip; their results, in order.

        They run one after another as if sent apart (under READ COMMITTED each still sees
        what committed before it started, after any lock the one before it waited for),
        so only statements that do not depend on each other's results belong together."""
        if self.held is None:
            return [self.execute(sql, params) for sql, params in statements]
        cur = self._batch([self._bound(sql, params) for sql, params in statements])
        results = []
        for index in range(len(statements)):
            if index:
                cur.nextset()
            results.append(Result(cur))
        return results

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        if self.held is not None and rows and "RETURNING" not in sql:
            for row in rows:
                if not self._hold(sql, row):
                    break
            else:
                return _DEFERRED
        if self.held or self.pending_begin:
            self.flush()
        cur = self.raw.cursor(row_factory=_row_factory)
        if rows:
            cur.executemany(translate(sql), rows)
        return cur


class PostgresStore:
    """An open PostgreSQL ledger (see :class:`dispatch_kit.ledger.backends.Store`)."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    # The next attempt's id, read with the claim's first statements so that the attempt
    # row, its claim and events are written in the COMMIT's round trip, not one of their own.
    next_attempt_id = "SELECT nextval(pg_get_serial_sequence('attempts', 'id'))"

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
            raise InputError("not a dispatch-kit ledger (no schema_version in its meta table)",
                             path=self.where)
        version = schema_version_of(row[0], self.where)
        if needs_migration(version, self.where):
            with self.transaction() as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
                current = schema_version_of(db.execute(  # another process may have migrated
                    "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0],
                    self.where)
                migrate(db, current)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; the rows it locks stay locked until it ends.

        Round trips are what a runner pays for on a shared ledger, so the BEGIN and the read
        of the database's clock (``now`` returns it) go with the transaction's first
        statement, and writes whose result nobody reads go with the next read or with the
        COMMIT (see :class:`Connection`). A transaction opened inside another one is a
        savepoint, as with ``psycopg.Connection.transaction``."""
        conn = self.conn
        if conn.held is not None:  # nested: a savepoint in the open transaction
            conn.flush()
            try:
                with conn.raw.transaction():
                    yield conn
                    conn.flush()  # its writes go before the savepoint is released
            except BaseException:
                conn.held = []  # writes held inside it were rolled back with it
                raise
            return
        conn.held, conn.pending_begin, conn.begun_at = [], True, None
        try:
            yield conn
            conn.flush("COMMIT")
        except BaseException:
            if not conn.raw.closed and conn.raw.info.transaction_status != \
                    psycopg.pq.TransactionStatus.IDLE:
                conn.raw.execute("ROLLBACK")
            raise
        finally:
            conn.held, conn.pending_begin, conn.begun_at = None, False, None

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One consistent snapshot for several SELECTs."""
        self.conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield self.conn
        finally:
            self.conn.raw.execute("COMMIT")

    def now(self) -> float:
        conn = self.conn
        if conn.pending_begin:  # asked before any statement: begin now, read with BEGIN
            conn.flush()
        begun, conn.begun_at = conn.begun_at, None
        if begun is not None:  # the first ask in a transaction: read with its BEGIN
            return begun
        return float(conn.raw.execute(CLOCK).fetchone()[0])

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
