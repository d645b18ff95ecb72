"""The event loop of ``dispatch-kit run``: start, watch, check, record, until nothing is left.

Everything the loop knows is in the ledger, so it can stop at any moment (Ctrl-C, a cron
timeout) and the next run carries on where it left off.
"""

from __future__ import annotations

import os
import time

from dispatch_kit import telemetry
from dispatch_kit.ledger import Ledger
from dispatch_kit.plan.model import Plan
from dispatch_kit.procs.groups import hostname, kill_group, pid_start
from dispatch_kit.procs.watchdog import Watchdog
from dispatch_kit.runner.collect import Collector, ResolvedPlan
from dispatch_kit.runner.detached import Detacher
from dispatch_kit.runner.events import Events
from dispatch_kit.runner.files import runs_dir
from dispatch_kit.runner.options import RunOptions
from dispatch_kit.runner.prepare import Preparer
from dispatch_kit.runner.progress import Progress
from dispatch_kit.runner.prompts import mission_env
from dispatch_kit.runner.recovery import Recovery
from dispatch_kit.runner.start import Starter
from dispatch_kit.runner.state import RunState
from dispatch_kit.runner.watch import Watcher


class Runner:
    """Run one mission of a plan with a worker command, holding its claims in the ledger.

    Owns the run's :class:`RunState` and the parts that act on it: ``events`` (what the
    loop sleeps on), ``preparer`` (attempt files), ``starter``, ``watcher``, ``recovery``
    and ``detacher``. Each part is given what it uses; only the runner sees them all.
    """

    def __init__(self, plan: Plan, ledger: Ledger, mission: str, options: RunOptions,
                 progress: Progress | None = None) -> None:
        plan = ResolvedPlan.of(plan)
        holder = options.holder or f"run:{hostname()}:{os.getpid()}"
        collector = Collector(ledger.mission(mission), plan, jobs=options.jobs)
        # Traces only when the OTEL_ environment asks (dispatch_kit.telemetry); else None.
        # The trace store speaks SQLite: a ledger on PostgreSQL runs untraced for now.
        trace = telemetry.for_mission(
            ledger, mission, kind="detach" if options.detach else "run",
        ) if ledger.store.dialect == "sqlite" else None
        self.state = RunState(
            plan=plan, ledger=ledger, mission=mission, options=options,
            progress=progress or Progress(), holder=holder, me_start=pid_start(os.getpid()),
            collector=collector,
            # Kills each worker at its time limit even if this runner is killed with -9, so
            # nothing of an attempt outlives its lease (dispatch_kit.procs.watchdog).
            watchdog=Watchdog(), trace=trace,
            tasks={task.id: task for task in plan.tasks},
            task_dirs={task.id: plan.task_dir(task) for task in plan.tasks},
        )
        self.events = Events()
        self.preparer = Preparer(self.state, self.events, base_env=mission_env(plan, mission),
                                 runs=runs_dir(ledger.path, mission, plan.workspace))
        self.starter = Starter(self.state, self.events, self.preparer)
        self.watcher = Watcher(self.state, self.events)
        self.recovery = Recovery(self.state, self.events)
        self.detacher = Detacher(self.state, self.preparer, self.starter, self.recovery)
        if trace is not None:
            trace.start_run(holder, options.worker)
            trace.trace_collector(collector)

    @property
    def collector(self) -> Collector:
        return self.state.collector

    @property
    def contended(self) -> bool:
        """Whether another runner won a claim from this one (then it claims before starting)."""
        return self.state.contended

    def run(self) -> dict:
        """Run the mission to the end; return the ledger's status document."""
        state, ledger, mission = self.state, self.state.ledger, self.state.mission
        self.recovery.recover()
        try:
            while True:
                self.watcher.reap()
                self.watcher.record_checks()
                if self.recovery.due():
                    self.recovery.recover()
                slots = state.options.wip - len(state.running) - len(state.checking)
                if slots > 0 and state.contended:
                    for _ in range(slots):  # runners share the mission: claim, then start
                        if not self.starter.start_next():
                            break
                elif slots > 0:
                    for row in ledger.next_ready(mission, limit=slots):
                        self.starter.start(row)
                if not state.running and not state.checking:
                    if ledger.in_flight(mission):
                        time.sleep(0.2)  # other holders are working; sweep them when stale
                        self.recovery.recover()
                        continue
                    if not ledger.next_ready(mission, limit=1):
                        break
                    continue
                self.preparer.prefetch()
                self.watcher.wait()
        except BaseException:
            self._abort("runner interrupted")
            raise
        finally:
            self.close()
        return ledger.status(mission)

    def detach(self, wip: int | None = None) -> list[dict]:
        """``run --detach``: see :meth:`Detacher.detach`."""
        return self.detacher.detach(wip)

    def _abort(self, reason: str) -> None:
        """Stop every worker this runner started; give their claims back unspent."""
        state = self.state
        if state.trace is not None:
            state.trace.interrupted = reason
        for running in list(state.running.values()):
            kill_group(running.pid, grace=0.5)
            state.watchdog.drop(running.pid)
            self.events.close_output(running)
            state.ledger.release(state.mission, running.task_id, reason=reason,
                                 expect_attempt=running.attempt_id, outcome="interrupted",
                                 actor=state.holder)
            state.progress.emit("interrupted", running.task_id,
                                f"interrupted {running.task_id}: worker stopped, claim released")
        state.running.clear()
        for task_id, (future, running) in list(state.checking.items()):
            future.cancel()
            state.ledger.release(state.mission, task_id, reason=reason,
                                 expect_attempt=running.attempt_id, outcome="interrupted",
                                 actor=state.holder)
        state.checking.clear()

    def close(self) -> None:
        """End the trace, stop the checks, close the selector and the watchdog."""
        state = self.state
        if state.trace is not None:
            trace, state.trace = state.trace, None
            trace.end_run()
        self.watcher.close()
        state.watchdog.close()
        self.events.close()
