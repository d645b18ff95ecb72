"""The core every part of the ledger shares: the storage backend, transactions, clock, events.

The ledger's transactions are written once; the engine under them is a
:class:`~dispatch_kit.ledger.backends.Store` chosen by what ``open`` is given
(a SQLite file path, or a PostgreSQL URL). Every state change runs inside
``Db.tx`` and appends an event, so the backend alone decides how racers are
serialised and whose clock a lease is measured by.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from dispatch_kit.ledger.backends import Store


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


def together(db: Any, *statements: tuple[str, Sequence[Any]]) -> list[Any]:
    """Run independent statements in one round trip where the backend can (PostgreSQL: one
    batch, see its ``Connection``), one by one where it need not (SQLite is in-process);
    their results, in order."""
    send = getattr(db, "execute_together", None)
    if send is not None:
        return send(statements)
    return [db.execute(sql, params) for sql, params in statements]


class Db:
    """One open ledger database, handed to each part of the ledger that reads or writes it.

    It exists so the parts (queries, claims, verdicts, ...) share the few things every
    transaction needs (the backend, its transactions and snapshots, the database clock,
    the event row) without inheriting them from one another.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.where = store.where  # what messages name: the file, or the redacted URL
        self.conn = store.conn

    def tx(self):
        """One write transaction (see the backend for how racers are serialised)."""
        return self.store.transaction()

    def read(self):
        """One consistent snapshot for several SELECTs."""
        return self.store.snapshot()

    def now(self, now: float | None) -> float:
        """``now`` when the caller gives one (tests), else the database's clock."""
        return self.store.now() if now is None else now

    event = staticmethod(append_event)
