"""The ledger's storage seam: what the ledger's transactions need from a database engine.

The ledger (claims, verdicts, sweeps) is written once against :class:`Store`;
each backend module holds everything that differs per engine: how to connect,
how a write transaction locks, the database clock, the engine's own triggers,
and how a reader waits for new events. The statements the transactions run are
portable SQL with ``?`` placeholders (a backend translates them when its driver
wants another style), so one semantics test suite covers both engines.

``sqlite`` (the default, one machine) costs nothing to import beyond the
standard library; ``postgres`` imports psycopg, and only when a PostgreSQL URL
is opened, so the session hooks and the linter never pay for it.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

URL_PREFIXES = ("postgresql://", "postgres://")


def is_url(target: object) -> bool:
    """True for a PostgreSQL connection URL (the only server backend)."""
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def redact(url: str) -> str:
    """The URL without its password, for messages, prompts and reports."""
    return re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)


class Store(Protocol):
    """One open ledger database, as the ledger's transactions use it.

    ``conn`` runs single statements outside a transaction (reads); ``transaction``
    is a write transaction in which rows the caller locks stay locked until it
    ends; ``snapshot`` is one consistent read of several statements. Every
    connection object yielded has ``execute(sql, params)`` and
    ``executemany(sql, rows)`` returning cursors whose rows index by position and
    by column name, as ``sqlite3.Row`` does.
    """

    dialect: str  # "sqlite" | "postgresql"
    where: str  # for messages: the file, or the URL without its password
    path: Path | None  # the SQLite file; None for a server
    conn: Any
    for_update: str  # appended to a SELECT that must lock the rows it returns
    skip_locked: str  # appended to a SELECT whose locked rows racers should pass over
    next_attempt_id: str | None  # allocates an attempt id ahead of its INSERT, where that helps

    def transaction(self) -> AbstractContextManager[Any]: ...

    def snapshot(self) -> AbstractContextManager[Any]: ...

    def now(self) -> float:
        """The database's clock (seconds since the epoch): leases are compared against it."""
        ...

    def lock_mission(self, db: Any, mission_id: str) -> None:
        """Serialise mission-wide changes (init, reset, finishing) inside ``db``'s transaction."""
        ...

    def wait_for_events(self, timeout: float) -> bool:
        """Block until the events table may have grown (or ``timeout``); True if woken.

        The first call starts watching and returns True at once: the caller reads again
        then, so nothing committed since its first read is missed."""
        ...

    def close(self) -> None: ...


def open_store(target: str | Path, *, create: bool = False,
               busy_timeout: float = 60.0) -> Store:
    """The backend for ``target``: a PostgreSQL URL, else a SQLite file path."""
    if is_url(target):
        from dispatch_kit.ledger.backends.postgres import PostgresStore

        return PostgresStore.open(str(target), create=create)
    from dispatch_kit.ledger.backends.sqlite import SqliteStore

    return SqliteStore.open(Path(target), create=create, busy_timeout=busy_timeout)
