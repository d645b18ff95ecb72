"""Dealing with claims this runner does not hold: adopting live orphans, sweeping the rest.

A runner killed mid-mission leaves workers running; the next one takes them over instead
of starting the same tasks again.
"""

from __future__ import annotations

import os
import selectors
import time
from pathlib import Path

from dispatch_kit.ledger import ClaimRow
from dispatch_kit.procs import BoundedLog
from dispatch_kit.runner.collect import detached_alive, detached_overdue
from dispatch_kit.runner.files import pipe_path
from dispatch_kit.runner.options import LEASE_MARGIN
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.state import Running
from dispatch_kit.runner.watch import Watching
from dispatch_kit.watchdog import GRACE


class Recovery(Watching):
    """Renewing this runner's leases, adopting orphans, collecting stale claims."""

    def recover(self, *, adopt: bool = True) -> None:
        """Deal with claims this runner does not hold: adopt live orphans, sweep stale ones."""
        self._last_recover = time.monotonic()
        now = time.time()
        self.ledger.renew(self.mission, self.holder, {
            **{t: r.deadline + LEASE_MARGIN for t, r in self.running.items()},
            **{t: now + LEASE_MARGIN for t in self.checking},
        })
        if adopt:
            for claim in self.ledger.claims(self.mission):
                if claim.holder == self.holder or claim.task_id in self.running:
                    continue
                if (claim.state == "dispatched" and claim.holder_alive() is False
                        and claim.worker_alive()):
                    self._adopt(claim)
        for action in self.ledger.sweep(
            self.mission, collect=self.collector.collect, actor=self.holder,
            skip=lambda c: c.holder == self.holder or (
                detached_alive(c) and not detached_overdue(c, now)),
        ):
            if action.action == "released":
                self.progress.emit("released", action.task_id,
                                   f"released {action.task_id}: {action.reason}",
                                   reason=action.reason)
            elif action.result is not None:
                self.progress.emit("collected", action.task_id,
                                   f"collected {action.task_id}: {action.reason}",
                                   reason=action.reason)
                emit_record(self.progress, action.result)

    def _adopt(self, claim: ClaimRow) -> None:
        reason = f"holder {claim.holder} is gone; worker pid {claim.pid} still running"
        if not self.ledger.adopt(self.mission, claim.task_id, claim.attempt_id, self.holder,
                                 holder_pid=os.getpid(), holder_start=self.me_start,
                                 reason=reason):
            return
        timeout = self._timeout(claim.task_id)
        started = claim.dispatched_at or claim.claimed_at
        task = self.tasks[claim.task_id]
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
                running.log = BoundedLog(Path(claim.log_path or ""), self.opts.log_limit,
                                         append=True)
                self.selector.register(running.fd, selectors.EVENT_READ, claim.task_id)
        self.running[claim.task_id] = running
        self._watch_exit(running)
        # The dead runner's watchdog bounds it too, unless it was killed along with its runner.
        self.watchdog.watch(running.pid, running.pid_start,
                            running.deadline - time.time() + GRACE)
        self.progress.emit("adopted", claim.task_id, f"adopted {claim.task_id} (attempt "
                           f"{claim.attempt}, pid {claim.pid}): {reason}", pid=claim.pid)
