"""The dispatch ledger: mission state in a database, so no orchestrator keeps it only in memory.

Agents lose their context (compaction, a crash, a cron run ending) and then
dispatch the same work twice or leave claims "in progress" forever. The ledger
is the one place the state lives: each change is a single transaction (so two
executors racing for one task cannot both win), and every change appends a row
to ``events``, which triggers make append-only. The database is a SQLite file
by default (one machine) or PostgreSQL (``postgresql://`` URL: one mission
shared by many machines); ``backends`` holds everything that differs between
the two, behind the small :class:`~dispatch_kit.ledger.backends.Store` seam.

Task states::

    ready --claim--> claimed --dispatch--> dispatched --record(pass)--> verified
      ^                 |                      |
      |   release/stale |   record(fail), or   |--record(fail, last attempt)--> failed
      +-----------------+---- stale + check ---+        (ready dependents -> skipped)

``attempt`` is the number of the current (or next) attempt, 1-based; a task
gets ``1 + max_retries`` attempts. A claim freed before its worker started
does not use up an attempt; one freed after dispatch does.

The package is split by what each part does: ``schema`` (tables, states, one
definition for both engines), ``backends`` (storage: connecting, locking, the
database clock, waiting for events), ``connection`` (:class:`Db`, the open
database every part shares: backend, transactions, clock, events), ``queries``
(reads), ``missions`` (loading a plan), ``claims`` (claims and leases),
``verdicts`` (recording results, skipping dependents), ``sweep`` (freeing stale
claims), ``status`` (the report document). Each part is an object given, when
it is built, the ``Db`` and the other parts it calls; none inherits from
another. :class:`Ledger` builds them and forwards its public methods to them;
every public name stays importable from ``dispatch_kit.ledger``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from dispatch_kit.ledger.backends import Store, open_store
from dispatch_kit.ledger.claims import Claims
from dispatch_kit.ledger.connection import Db
from dispatch_kit.ledger.fingerprint import mission_id_for, plan_fingerprint
from dispatch_kit.ledger.location import DEFAULT_DB, ENV_DB, default_db_for, find_db
from dispatch_kit.ledger.missions import Missions
from dispatch_kit.ledger.queries import Queries
from dispatch_kit.ledger.rows import (
    ClaimResult,
    ClaimRow,
    InitResult,
    Mission,
    RecordResult,
    SweepAction,
    TaskRow,
    Worker,
    first_line,
    iso,
)
from dispatch_kit.ledger.schema import IN_FLIGHT, SCHEMA_VERSION, STATES, TERMINAL
from dispatch_kit.ledger.status import Reports
from dispatch_kit.ledger.sweep import Sweeper
from dispatch_kit.ledger.verdicts import ERROR_LIMIT, Verdicts, summarize_check
from dispatch_kit.procs.groups import kill_group

__all__ = [
    "DEFAULT_DB",
    "ENV_DB",
    "ERROR_LIMIT",
    "IN_FLIGHT",
    "SCHEMA_VERSION",
    "STATES",
    "TERMINAL",
    "ClaimResult",
    "ClaimRow",
    "InitResult",
    "Ledger",
    "Mission",
    "RecordResult",
    "SweepAction",
    "TaskRow",
    "Worker",
    "default_db_for",
    "find_db",
    "first_line",
    "iso",
    "mission_id_for",
    "plan_fingerprint",
    "summarize_check",
]


class Ledger:
    """One open ledger database. Methods are transactions; none holds a lock across calls.

    The methods live in one part per concern (see the package docstring); this class only
    builds the parts and forwards to them, so callers keep a single object to open, use and
    close. The engine is composed in too (``self.store``), chosen by ``open``'s target.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: Path | None = store.path  # the SQLite file; None on a server
        self.where = store.where  # what messages name: the file, or the redacted URL
        # What a worker prompt's dispatch line names, for the hooks to record there.
        self.location: Path | str = self.path if self.path is not None else self.where
        self.conn = store.conn
        db = Db(store)
        self._tx, self._now = db.tx, db.now  # for tests that write or time a change directly
        queries = Queries(db)
        claims, verdicts = Claims(db, queries), Verdicts(db, queries)
        missions, reports = Missions(db), Reports(db, queries)
        sweeper = Sweeper(db, queries, claims, verdicts, stop_group=kill_group)
        # The public methods, each the part's own (same signature, same docstring).
        self.missions = queries.missions
        self.mission = queries.mission
        self.tasks = queries.tasks
        self.task = queries.task
        self.in_flight = queries.in_flight
        self.next_ready = queries.next_ready
        self.claims = queries.claims
        self.claim_of = queries.claim_of
        self.claim = claims.claim
        self.claim_next = claims.claim_next
        self.mark_dispatched = claims.mark_dispatched
        self.renew = claims.renew
        self.adopt = claims.adopt
        self.release = claims.release
        self.record = verdicts.record
        self.init_mission = missions.init_mission
        self.reset_mission = missions.reset_mission
        self.status = reports.status
        self.events = reports.events
        self.stale_reason = sweeper.stale_reason
        self.sweep = sweeper.sweep

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
