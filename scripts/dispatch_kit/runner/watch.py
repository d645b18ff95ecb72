"""Watching workers in flight: their output, their exit, their deadline, their verdict.

The loop sleeps in one ``select`` on worker pipes, exit notifications and a wake-up pipe,
so many workers cost no polling; checks run on a thread pool off that loop.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor

from dispatch_kit.durations import format_duration
from dispatch_kit.errors import InputError
from dispatch_kit.procs import kill_group, pid_alive, pump
from dispatch_kit.runner.collect import failing_entry, worker_note
from dispatch_kit.runner.files import exit_file_for, read_exit_file
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.prompts import build_prompt
from dispatch_kit.runner.state import RunnerState, Running


class Watching(RunnerState):
    """Draining output, reaping exits, recording verdicts, sleeping until the next event."""

    def _drain(self, running: Running, *, final: bool = False) -> None:
        """Move what the worker printed into its log; on EOF (or ``final``) close the pipe."""
        if running.fd is None or pump(running.fd, running.log, final=final):
            return
        self.selector.unregister(running.fd)
        os.close(running.fd)
        running.fd = None
        if running.fifo is not None:
            running.fifo.unlink(missing_ok=True)

    def _reap(self) -> None:
        now = time.time()
        for running in list(self.running.values()):
            if running.proc is not None:
                code = running.proc.poll()
                done = code is not None
            else:
                done, code = not pid_alive(running.pid, running.pid_start), None
            if not done and now >= running.deadline:
                running.timed_out = True
                kill_group(running.pid)
                self.progress.emit("timeout", running.task_id, f"timeout {running.task_id}: "
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
        try:
            os.killpg(running.pid, signal.SIGKILL)  # background children it left behind
        except (ProcessLookupError, PermissionError):
            pass
        self.watchdog.drop(running.pid)
        self._close_output(running)
        if running.proc is None and running.log_path:
            status = read_exit_file(exit_file_for(running.log_path)) or {}
            code = status.get("exit_code", code)
            running.timed_out = running.timed_out or bool(status.get("timed_out"))
        running.exit_code = code
        running.check_started = time.time()
        del self.running[running.task_id]
        future: Future
        if not self.running and not self.checking:
            # Nothing else in flight whose output or deadline needs watching: check
            # right here and skip the hand-off to a thread.
            future = Future()
            try:
                future.set_result(self.collector.check(running.task_id))
            except Exception as exc:  # noqa: BLE001 - reported as the task's failure
                future.set_exception(exc)
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=max(1, self.opts.wip))
            future = self.pool.submit(self.collector.check, running.task_id)
            future.add_done_callback(lambda _f: self._wake())
        self.checking[running.task_id] = (future, running)

    def _close_output(self, running: Running) -> None:
        """Read the last output, stop watching for the exit, close the log: the worker is done."""
        self._drain(running, final=True)
        self._unwatch_exit(running)
        if running.log is not None:
            running.log.close()

    def _watch_exit(self, running: Running) -> None:
        """Get woken the moment the worker exits, not at the next poll (Linux pidfd)."""
        try:
            running.pidfd = os.pidfd_open(running.pid)
        except (AttributeError, OSError):
            running.pidfd = None
            return
        self.selector.register(running.pidfd, selectors.EVENT_READ, ("exit", running.task_id))

    def _unwatch_exit(self, running: Running) -> None:
        if running.pidfd is not None:
            self.selector.unregister(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _record_checks(self) -> None:
        for task_id, (future, running) in list(self.checking.items()):
            if not future.done():
                continue
            del self.checking[task_id]
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a checker crash must not kill the loop
                entry = failing_entry(task_id, f"the checker crashed: {exc!r}")
            note = worker_note(running.exit_code, running.timed_out, running.timeout)
            if note and not entry.get("passed"):
                entry = dict(entry, note=note, worker_timed_out=running.timed_out)
            result = self.ledger.record(
                self.mission, task_id, entry, note=note if not entry.get("passed") else None,
                exit_code=running.exit_code, timed_out=running.timed_out,
                expect_attempt=running.attempt_id, actor=self.holder,
            )
            emit_record(self.progress, result, time.time() - running.started)
            if self.trace is not None:
                self.trace.criteria(running.attempt_id, task_id, entry, running.check_started)
                self.trace.flush()

    def _prefetch(self) -> None:
        """Render the prompts of the next ready tasks while workers run, off the critical path.

        Only when no output is waiting to be read, and never more than WIP
        prompts ahead; a prompt rendered for an attempt that never starts is
        simply dropped.
        """
        if len(self._prompts) >= self.opts.wip or not self.running or self.contended:
            return  # (runners sharing a mission: the next ready task is likely another's)
        if self.selector.select(0):
            return  # something to handle first
        for row in self.ledger.next_ready(self.mission, limit=self.opts.wip):
            key = (row.id, row.attempt)
            if key in self._prompts:
                continue
            try:
                self._prompts[key] = build_prompt(self.collector.task_plan(row.id), row,
                                                  self.tasks[row.id],
                                                  self.task_dirs[row.id])
            except InputError:
                return  # it will fail again, visibly, when the task starts
            return  # one per idle moment: the loop comes back here while workers run

    def _wait(self) -> None:
        """Sleep until output, a worker exit, a finished check or the next deadline."""
        timeout = 1.0
        if any(r.pidfd is None for r in self.running.values()):
            timeout = 0.02  # no exit notification for some worker: poll
        if self.running:
            soonest = min(r.deadline for r in self.running.values()) - time.time()
            timeout = max(0.0, min(timeout, soonest))
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            if isinstance(key.data, tuple):
                continue  # a worker exited: the next _reap collects it
            running = self.running.get(key.data)
            if running is not None:
                self._drain(running)
