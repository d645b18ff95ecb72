"""Dealing with claims this runner does not hold: adopting live orphans, sweeping the rest.

A runner killed mid-mission leaves workers running; the next one takes them over instead
of starting the same tasks again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dispatch_kit.ledger import ClaimRow
from dispatch_kit.procs.groups import BoundedLog
from dispatch_kit.procs.watchdog import GRACE
from dispatch_kit.runner.collect import detached_alive, detached_overdue
from dispatch_kit.runner.events import Events
from dispatch_kit.runner.files import pipe_path
from dispatch_kit.runner.options import LEASE_MARGIN, RECOVER_EVERY
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.state import Running, RunState


class Recovery:
    """Renewing this runner's leases, adopting orphans, collecting stale claims.

    An adopted worker joins ``state.running`` and ``events`` like one this runner started.
    """

    def __init__(self, state: RunState, events: Events) -> None:
        self.state = state
        self.events = events
        self._last = 0.0  # time.monotonic() of the last recover

    def due(self) -> bool:
        """Whether RECOVER_EVERY has passed since the last recover."""
        return time.monotonic() - self._last > RECOVER_EVERY

    def recover(self, *, adopt: bool = True) -> None:
        """Deal with claims this runner does not hold: adopt live orphans, sweep stale ones."""
        state = self.state
        self._last = time.monotonic()
        now = time.time()
        state.ledger.renew(state.mission, state.holder, {
            **{t: r.deadline + LEASE_MARGIN for t, r in state.running.items()},
            **{t: now + LEASE_MARGIN for t in state.checking},
        })
        if adopt:
            for claim in state.ledger.claims(state.mission):
                if claim.holder == state.holder or claim.task_id in state.running:
                    continue
                if (claim.state == "dispatched" and claim.holder_alive() is False
                        and claim.worker_alive()):
                    self._adopt(claim)
        for action in state.ledger.sweep(
            state.mission, collect=state.collector.collect, actor=state.holder,
            skip=lambda c: c.holder == state.holder or (
                detached_alive(c) and not detached_overdue(c, now)),
        ):
            if action.action == "released":
                state.progress.emit("released", action.task_id,
                                    f"released {action.task_id}: {action.reason}",
                                    reason=action.reason)
            elif action.result is not None:
                state.progress.emit("collected", action.task_id,
                                    f"collected {action.task_id}: {action.reason}",
                                    reason=action.reason)
                emit_record(state.progress, action.result)
        if state.trace is not None:  # a sweep may have ended attempts to emit
            state.trace.flush()

    def _adopt(self, claim: ClaimRow) -> None:
        state = self.state
        reason = f"holder {claim.holder} is gone; worker pid {claim.pid} still running"
        if not state.ledger.adopt(state.mission, claim.task_id, claim.attempt_id, state.holder,
                                  holder_pid=os.getpid(), holder_start=state.me_start,
                                  reason=reason):
            return
        timeout = state.timeout(claim.task_id)
        started = claim.dispatched_at or claim.claimed_at
        task = state.tasks[claim.task_id]
        running = Running(
            task_id=claim.task_id, attempt=claim.attempt, max_attempts=1 + task.max_retries,
            attempt_id=claim.attempt_id, pid=claim.pid or 0, pid_start=claim.pid_start,
            deadline=started + timeout + 5.0, timeout=timeout, log_path=claim.log_path,
            started=started,
        )
        old_fifo = pipe_path(claim.log_path, claim.holder_pid or 0) if claim.log_path else None
        fifo = pipe_path(claim.log_path, os.getpid()) if claim.log_path else None
        if old_fifo is not None and fifo is not None and old_fifo.exists():
            # Reattach to the worker's output: it has been waiting for a reader.
            try:
                os.replace(old_fifo, fifo)
                running.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                running.fd = None
            if running.fd is not None:
                running.fifo = fifo
                running.log = BoundedLog(Path(claim.log_path or ""), state.options.log_limit,
                                         append=True)
                self.events.watch_output(running)
        state.running[claim.task_id] = running
        self.events.watch_exit(running)
        # The dead runner's watchdog bounds it too, unless it was killed along with its runner.
        state.watchdog.watch(running.pid, running.pid_start,
                             running.deadline - time.time() + GRACE)
        state.progress.emit("adopted", claim.task_id, f"adopted {claim.task_id} (attempt "
                            f"{claim.attempt}, pid {claim.pid}): {reason}", pid=claim.pid)
