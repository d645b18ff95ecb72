"""An open ledger: the storage backend it composes, transactions, and the event row.

The ledger's transactions are written once; the engine under them is a
:class:`~dispatch_kit.ledger.backends.Store` chosen by what ``open`` is given
(a SQLite file path, or a PostgreSQL URL). Every state change runs inside
``_tx`` and appends an event, so the backend alone decides how racers are
serialised and whose clock a lease is measured by.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Self

from dispatch_kit.ledger.backends import Store, open_store


def append_event(
    db: Any,
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
    """An open ledger database: the backend it holds, and transactions over it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: Path | None = store.path  # the SQLite file; None on a server
        self.where = store.where  # what messages name: the file, or the redacted URL
        self.conn = store.conn

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False, busy_timeout: float = 60.0) -> Self:
        """Open the ledger at ``path``: a SQLite file, or a ``postgresql://`` URL."""
        return cls(open_store(path, create=create, busy_timeout=busy_timeout))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self):
        """One write transaction (see the backend for how racers are serialised)."""
        return self.store.transaction()

    def _read(self):
        """One consistent snapshot for several SELECTs."""
        return self.store.snapshot()

    def _now(self, now: float | None) -> float:
        """``now`` when the caller gives one (tests), else the database's clock."""
        return self.store.now() if now is None else now

    _event = staticmethod(append_event)
