"""Watching workers in flight: their output, their exit, their deadline, their verdict.

The loop sleeps in one ``select`` (:class:`~dispatch_kit.runner.events.Events`) on worker
pipes, exit notifications and a wake-up pipe; checks run on a thread pool off that loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor

from dispatch_kit.durations import format_duration
from dispatch_kit.procs.groups import kill_group, pid_alive
from dispatch_kit.runner.collect import failing_entry, worker_note
from dispatch_kit.runner.events import Events
from dispatch_kit.runner.files import exit_file_for, read_exit_file
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.state import Running, RunState


class Watcher:
    """Reaping workers that exited or ran out of time, checking them, recording verdicts.

    Moves each worker from ``state.running`` to ``state.checking`` when it is gone, and
    out of ``state.checking`` once its verdict is in the ledger. Owns the thread pool
    the checks run on, started only when a check must not block the loop.
    """

    def __init__(self, state: RunState, events: Events) -> None:
        self.state = state
        self.events = events
        self._pool: ThreadPoolExecutor | None = None

    def reap(self) -> None:
        state = self.state
        now = time.time()
        for running in list(state.running.values()):
            if running.proc is not None:
                code = running.proc.poll()
                done = code is not None
            else:
                done, code = not pid_alive(running.pid, running.pid_start), None
            if not done and now >= running.deadline:
                running.timed_out = True
                kill_group(running.pid)
                state.progress.emit("timeout", running.task_id, f"timeout {running.task_id}: "
                                    f"worker stopped after {format_duration(running.timeout)}",
                                    timeout=running.timeout)
                if running.proc is not None:
                    try:
                        code = running.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        code = None
                done = True
            if done:
                self._finish(running, code)

    def _finish(self, running: Running, code: int | None) -> None:
        """The worker is gone: stop leftovers in its group, close its log, check its criteria."""
        state = self.state
        try:
            os.killpg(running.pid, signal.SIGKILL)  # background children it left behind
        except (ProcessLookupError, PermissionError):
            pass
        state.watchdog.drop(running.pid)
        self.events.close_output(running)
        if running.proc is None and running.log_path:
            status = read_exit_file(exit_file_for(running.log_path)) or {}
            code = status.get("exit_code", code)
            running.timed_out = running.timed_out or bool(status.get("timed_out"))
        running.exit_code = code
        running.check_started = time.time()
        del state.running[running.task_id]
        future: Future
        if not state.running and not state.checking:
            # Nothing else in flight whose output or deadline needs watching: check
            # right here and skip the hand-off to a thread.
            future = Future()
            try:
                future.set_result(state.collector.check(running.task_id))
            except Exception as exc:  # noqa: BLE001 - reported as the task's failure
                future.set_exception(exc)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=max(1, state.options.wip))
            future = self._pool.submit(state.collector.check, running.task_id)
            future.add_done_callback(lambda _f: self.events.wake())
        state.checking[running.task_id] = (future, running)

    def record_checks(self) -> None:
        state = self.state
        for task_id, (future, running) in list(state.checking.items()):
            if not future.done():
                continue
            del state.checking[task_id]
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a checker crash must not kill the loop
                entry = failing_entry(task_id, f"the checker crashed: {exc!r}")
            note = worker_note(running.exit_code, running.timed_out, running.timeout)
            if note and not entry.get("passed"):
                entry = dict(entry, note=note, worker_timed_out=running.timed_out)
            result = state.ledger.record(
                state.mission, task_id, entry, note=note if not entry.get("passed") else None,
                exit_code=running.exit_code, timed_out=running.timed_out,
                expect_attempt=running.attempt_id, actor=state.holder,
            )
            emit_record(state.progress, result, time.time() - running.started)
            if state.trace is not None:
                state.trace.criteria(running.attempt_id, task_id, entry, running.check_started)
                state.trace.flush()

    def wait(self) -> None:
        """Sleep until output, a worker exit, a finished check or the next deadline."""
        running_now = self.state.running
        timeout = 1.0
        if any(r.pidfd is None for r in running_now.values()):
            timeout = 0.02  # no exit notification for some worker: poll
        if running_now:
            soonest = min(r.deadline for r in running_now.values()) - time.time()
            timeout = max(0.0, min(timeout, soonest))
        for key, _ in self.events.select(timeout):
            if key.data is None:
                self.events.clear_wake()
                continue
            if isinstance(key.data, tuple):
                continue  # a worker exited: the next reap collects it
            running = running_now.get(key.data)
            if running is not None:
                self.events.drain(running)

    def close(self) -> None:
        """Stop the checks still queued; wait for those already running."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
