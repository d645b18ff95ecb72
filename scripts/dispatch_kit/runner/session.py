"""Setting up a run: the plan's ledger opened and loaded, SIGTERM turned into a clean stop.

Shared by the CLI and the benchmarks, which drive the runner without the CLI.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Plan


def open_mission(plan: Plan, *, db: str | None, mission: str | None, max_tasks: int,
                 force: bool = False, reset: bool = False) -> tuple[Ledger, str]:
    """Open (creating if needed) the plan's ledger and load the plan into it."""
    from dispatch_kit.check.confine import safe_name
    from dispatch_kit.ledger import default_db_for
    from dispatch_kit.ledger.location import as_target

    if mission is not None:
        safe_name(mission, "--mission")  # it names the folder of prompts and logs
    path = as_target(db) if db else default_db_for(plan)
    ledger = Ledger.open(path, create=True)
    try:
        result = ledger.init_mission(plan, mission_id=mission, max_tasks=max_tasks, force=force)
        safe_name(result.mission, "mission")
        if reset:
            ledger.reset_mission(result.mission)
        if isinstance(path, str):  # PostgreSQL: the session hooks' journal, imported first
            from dispatch_kit.ledger.journal_import import import_found

            import_found(ledger, path)
    except BaseException:
        ledger.close()
        raise
    return ledger, result.mission


def install_term_handler() -> Callable[[], None]:
    """Turn SIGTERM (a cron job's hard timeout) into the same clean stop as Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
