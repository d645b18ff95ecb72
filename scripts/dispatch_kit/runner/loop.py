"""The event loop of ``dispatch-kit run``: start, watch, check, record, until nothing is left.

Everything the loop knows is in the ledger, so it can stop at any moment (Ctrl-C, a cron
timeout) and the next run carries on where it left off.
"""

from __future__ import annotations

import os
import selectors
import time
from concurrent.futures import Future, ThreadPoolExecutor

from dispatch_kit import telemetry
from dispatch_kit.ledger import ClaimResult, Ledger, TaskRow, Worker
from dispatch_kit.plan_model import Plan
from dispatch_kit.procs import hostname, kill_group, pid_start
from dispatch_kit.runner.collect import Collector, ResolvedPlan
from dispatch_kit.runner.detached import Detaching
from dispatch_kit.runner.files import runs_dir
from dispatch_kit.runner.options import RECOVER_EVERY, RunOptions
from dispatch_kit.runner.progress import Progress
from dispatch_kit.runner.prompts import mission_env
from dispatch_kit.runner.recovery import Recovery
from dispatch_kit.runner.start import Starting
from dispatch_kit.runner.state import Running
from dispatch_kit.runner.watch import Watching
from dispatch_kit.watchdog import Watchdog


class Runner(Detaching, Starting, Recovery, Watching):
    """Run one mission of a plan with a worker command, holding its claims in the ledger."""

    def __init__(self, plan: Plan, ledger: Ledger, mission: str, options: RunOptions,
                 progress: Progress | None = None) -> None:
        plan = ResolvedPlan.of(plan)
        self.plan = plan
        self.ledger = ledger
        self.mission = mission
        self.opts = options
        self.progress = progress or Progress()
        self.holder = options.holder or f"run:{hostname()}:{os.getpid()}"
        self.me_start = pid_start(os.getpid())
        self.collector = Collector(ledger.mission(mission), plan, jobs=options.jobs)
        self.running: dict[str, Running] = {}
        self.checking: dict[str, tuple[Future, Running]] = {}
        self.selector = selectors.DefaultSelector()
        self.pool: ThreadPoolExecutor | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._last_recover = 0.0
        self.base_env = mission_env(plan, mission)
        self._prompts: dict[tuple[str, int], str] = {}  # rendered ahead, while workers run
        self.runs = runs_dir(ledger.path, mission, plan.workspace)
        self._runs_made = False
        self.tasks = {task.id: task for task in plan.tasks}
        self.task_dirs = {task.id: plan.task_dir(task) for task in plan.tasks}
        self.contended = False  # set once a claim is lost to another runner
        # Kills each worker at its time limit even if this runner is killed with -9, so
        # nothing of an attempt outlives its lease (dispatch_kit.watchdog).
        self.watchdog = Watchdog()
        self._next_lease: float | None = None  # claim_next's lease (see Starting._start_next)
        # Traces only when the OTEL_ environment asks (dispatch_kit.telemetry); else None.
        # The trace store speaks SQLite: a ledger on PostgreSQL runs untraced for now.
        self.trace = telemetry.for_mission(
            ledger, mission, kind="detach" if options.detach else "run",
        ) if ledger.store.dialect == "sqlite" else None
        if self.trace is not None:
            self.trace.start_run(self.holder, options.worker)
            self.trace.trace_collector(self.collector)

    def run(self) -> dict:
        """Run the mission to the end; return the ledger's status document."""
        self.recover()
        try:
            while True:
                self._reap()
                self._record_checks()
                if time.monotonic() - self._last_recover > RECOVER_EVERY:
                    self.recover()
                slots = self.opts.wip - len(self.running) - len(self.checking)
                if slots > 0 and self.contended:
                    for _ in range(slots):  # runners share the mission: claim, then start
                        if not self._start_next():
                            break
                elif slots > 0:
                    for row in self.ledger.next_ready(self.mission, limit=slots):
                        self._start(row)
                if not self.running and not self.checking:
                    if self.ledger.in_flight(self.mission):
                        time.sleep(0.2)  # other holders are working; sweep them when stale
                        self.recover()
                        continue
                    if not self.ledger.next_ready(self.mission, limit=1):
                        break
                    continue
                self._prefetch()
                self._wait()
        except BaseException:
            self._abort("runner interrupted")
            raise
        finally:
            self.close()
        return self.ledger.status(self.mission)

    # Tracing hook-ins: each worker gets its attempt's TRACEPARENT, the claim keeps the
    # span's ids, every sweep may have ended attempts to emit.
    def _prepare(self, row: TaskRow):
        prepared = super()._prepare(row)
        if self.trace is not None:
            self.trace.apply(prepared[4], row.id)
        return prepared

    def _claim(self, row: TaskRow, worker: Worker | None = None) -> ClaimResult:
        result = super()._claim(row, worker)
        if self.trace is not None and worker is not None and result.ok:
            self.trace.attempt_claimed(row.id, result.attempt_id)
        return result

    def _dispatch_claimed(self, row: TaskRow, claimed: ClaimResult,
                          worker: Worker) -> ClaimResult:
        result = super()._dispatch_claimed(row, claimed, worker)
        if self.trace is not None:
            self.trace.attempt_claimed(row.id, result.attempt_id)
        return result

    def recover(self, *, adopt: bool = True) -> None:
        super().recover(adopt=adopt)
        if self.trace is not None:
            self.trace.flush()

    def _abort(self, reason: str) -> None:
        """Stop every worker this runner started; give their claims back unspent."""
        if self.trace is not None:
            self.trace.interrupted = reason
        for running in list(self.running.values()):
            kill_group(running.pid, grace=0.5)
            self.watchdog.drop(running.pid)
            self._close_output(running)
            self.ledger.release(self.mission, running.task_id, reason=reason,
                                expect_attempt=running.attempt_id, outcome="interrupted",
                                actor=self.holder)
            self.progress.emit("interrupted", running.task_id,
                               f"interrupted {running.task_id}: worker stopped, claim released")
        self.running.clear()
        for task_id, (future, running) in list(self.checking.items()):
            future.cancel()
            self.ledger.release(self.mission, task_id, reason=reason,
                                expect_attempt=running.attempt_id, outcome="interrupted",
                                actor=self.holder)
        self.checking.clear()

    def close(self) -> None:
        if self.trace is not None:
            trace, self.trace = self.trace, None
            trace.end_run()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.selector.close()
        self.watchdog.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
