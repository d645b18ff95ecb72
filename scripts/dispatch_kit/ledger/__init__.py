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
database clock, waiting for events), ``connection`` (the open ledger over its
backend, transactions, events), ``queries`` (reads),
``missions`` (loading a plan), ``claims`` (claims and leases), ``verdicts``
(recording results, skipping dependents), ``sweep`` (freeing stale claims),
``status`` (the report document). :class:`Ledger` joins them; every public
name stays importable from ``dispatch_kit.ledger``.
"""

from __future__ import annotations

from dispatch_kit.ledger.claims import Claims
from dispatch_kit.ledger.connection import LedgerConnection
from dispatch_kit.ledger.fingerprint import mission_id_for, plan_fingerprint
from dispatch_kit.ledger.location import DEFAULT_DB, ENV_DB, default_db_for, find_db
from dispatch_kit.ledger.missions import MissionLoading
from dispatch_kit.ledger.queries import LedgerQueries
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
from dispatch_kit.ledger.status import Reporting
from dispatch_kit.ledger.sweep import Sweeping
from dispatch_kit.ledger.verdicts import ERROR_LIMIT, Verdicts, summarize_check

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


class Ledger(MissionLoading, Sweeping, Claims, Verdicts, Reporting, LedgerQueries,
             LedgerConnection):
    """One open ledger database. Methods are transactions; none holds a lock across calls.

    The methods live in one module per concern (see the package docstring); this class only
    puts them together, so callers keep a single object to open, use and close. The engine
    is not one of them: it is composed in (``self.store``), chosen by ``open``'s target.
    """
