"""What a run may be told: the worker command, limits, and how to report progress.

Kept in a module of its own so the CLI can build options without the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

LEASE_MARGIN = 120.0  # beyond the worker's time limit: room for the criteria check
RECOVER_EVERY = 2.0  # seconds between sweeps of other holders' claims
LOG_LIMIT = 1 << 20
PLACEHOLDERS = ("{prompt_file}", "{task}", "{attempt}", "{cwd}")


@dataclass
class RunOptions:
    worker: str
    wip: int = 1
    timeout: float | None = None  # per attempt; default: the task's timeout from the plan
    holder: str | None = None
    lease: float | None = None  # default: timeout + LEASE_MARGIN
    log_limit: int = LOG_LIMIT
    jobs: int | None = None  # criteria run in parallel per check
    output: str = "text"  # text | jsonl | quiet (progress stream)
    detach: bool = False
    max_dispatch: int = 1
