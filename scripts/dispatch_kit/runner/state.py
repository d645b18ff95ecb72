"""What one run knows, handed explicitly to each part of :class:`~dispatch_kit.runner.Runner`.

The runner is split into small collaborators (a starter, a watcher, a recovery, a
detacher); each receives this one state object in its constructor instead of sharing
attributes through inheritance, so what a part reads and changes is visible at its call.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Plan, Task
from dispatch_kit.procs.groups import BoundedLog
from dispatch_kit.procs.watchdog import GRACE
from dispatch_kit.runner.collect import Collector
from dispatch_kit.runner.options import LEASE_MARGIN, RunOptions
from dispatch_kit.runner.progress import Progress

if TYPE_CHECKING:
    from dispatch_kit.procs.watchdog import Watchdog
    from dispatch_kit.telemetry.mission import MissionTrace


@dataclass
class Running:
    """A worker in flight: started by this runner (``proc``) or adopted from a dead one."""

    task_id: str
    attempt: int
    max_attempts: int
    attempt_id: int
    pid: int
    pid_start: str | None
    deadline: float
    timeout: float
    proc: subprocess.Popen | None = None
    fd: int | None = None
    log: BoundedLog | None = None
    log_path: str | None = None
    fifo: Path | None = None
    pidfd: int | None = None  # readable when the worker exits (Linux); else we poll
    timed_out: bool = False
    exit_code: int | None = None
    started: float = field(default_factory=time.time)
    check_started: float | None = None  # when its criteria began (for their trace spans)


@dataclass
class RunState:
    """The mission, who holds its claims, and the attempts this runner has in flight.

    ``running`` (workers alive) and ``checking`` (workers gone, criteria being checked)
    are what this runner holds: the starter and the recovery add to them, the watcher
    moves entries from one to the other and out, the runner empties both on an abort.
    """

    plan: Plan
    ledger: Ledger
    mission: str
    options: RunOptions
    progress: Progress
    holder: str  # the ledger's name for this runner
    me_start: str | None  # this process's start time: tells the ledger it is still alive
    collector: Collector
    watchdog: Watchdog  # kills a worker at its time limit + GRACE, even after a kill -9
    trace: MissionTrace | None  # dispatch_kit.telemetry; None unless OTEL_ asks for traces
    contended: bool = False  # another runner won a claim from this one: claim first, then start
    tasks: dict[str, Task] = field(default_factory=dict)
    task_dirs: dict[str, Path] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)
    checking: dict[str, tuple[Future, Running]] = field(default_factory=dict)

    def timeout(self, task_id: str) -> float:
        return self.options.timeout or float(self.tasks[task_id].timeout)

    def lease(self, task_id: str) -> float:
        """The lease a claim gets: never shorter than the worker may live (its time limit
        plus the watchdog's GRACE), so another host never retries beside a live worker."""
        if self.options.lease:
            return max(self.options.lease, self.timeout(task_id) + GRACE)
        return self.timeout(task_id) + LEASE_MARGIN
