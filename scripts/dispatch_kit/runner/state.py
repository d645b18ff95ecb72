"""The runner's bookkeeping: workers in flight and the settings every part reads.

The runner is split by concern (starting, watching, recovering, detaching); this base
holds what they share so each part can be read without the others.
"""

from __future__ import annotations

import selectors
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dispatch_kit.ledger import Ledger
from dispatch_kit.plan_model import Plan, Task
from dispatch_kit.procs import BoundedLog
from dispatch_kit.runner.collect import Collector
from dispatch_kit.runner.options import LEASE_MARGIN, RunOptions
from dispatch_kit.runner.progress import Progress
from dispatch_kit.watchdog import GRACE

if TYPE_CHECKING:
    from dispatch_kit.telemetry.mission import MissionTrace
    from dispatch_kit.watchdog import Watchdog


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


class RunnerState:
    """Attributes and small helpers shared by every part of :class:`Runner`."""

    # Set by Runner.__init__; declared here so each part of the runner reads as typed.
    plan: Plan
    ledger: Ledger
    mission: str
    opts: RunOptions
    progress: Progress
    holder: str
    me_start: str | None
    collector: Collector
    running: dict[str, Running]
    checking: dict[str, tuple[Future, Running]]
    selector: selectors.BaseSelector
    pool: ThreadPoolExecutor | None
    _wake_r: int
    _wake_w: int
    _last_recover: float
    base_env: dict[str, str]
    _prompts: dict[tuple[str, int], str]
    runs: Path
    _runs_made: bool
    tasks: dict[str, Task]
    task_dirs: dict[str, Path]
    trace: MissionTrace | None  # dispatch_kit.telemetry; None unless OTEL_ asks for traces
    contended: bool  # another runner won a claim from this one: claim first, then start
    _next_lease: float | None
    watchdog: Watchdog  # kills a worker at its time limit + GRACE, even after a kill -9

    def _timeout(self, task_id: str) -> float:
        return self.opts.timeout or float(self.tasks[task_id].timeout)

    def _lease(self, task_id: str) -> float:
        """The lease a claim gets: never shorter than the worker may live (its time limit
        plus the watchdog's GRACE), so another host never retries beside a live worker."""
        if self.opts.lease:
            return max(self.opts.lease, self._timeout(task_id) + GRACE)
        return self._timeout(task_id) + LEASE_MARGIN
