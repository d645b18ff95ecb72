"""What the loop sleeps on: worker output pipes, worker exits and a wake-up pipe.

One ``select`` covers every worker, so many workers cost no polling. The starter and
the recovery register the workers they start or adopt here; the watcher drains and
closes them; a check finishing on a thread wakes the loop through the wake-up pipe.
"""

from __future__ import annotations

import os
import selectors
from pathlib import Path

from dispatch_kit.procs.groups import pump
from dispatch_kit.runner.files import spare_pipe_path
from dispatch_kit.runner.state import Running


class Events:
    """The selector and its wake-up pipe, and the per-worker descriptors registered in it.

    A key's data says what woke the loop: ``None`` the wake-up pipe, ``("exit", task_id)``
    a worker's exit (pidfd), a bare ``task_id`` that worker's output. A worker's output
    pipe that reached its end is kept for the next worker the starter starts
    (:meth:`take_spare`): a rename instead of a new named pipe and a removal per worker.
    """

    def __init__(self) -> None:
        self._spare: Path | None = None  # an emptied output pipe (named pipe), for the next start
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)

    def select(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        return self.selector.select(timeout)

    def wake(self) -> None:
        """Interrupt the loop's sleep (called from a checker thread)."""
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def clear_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def watch_output(self, running: Running) -> None:
        """Read the worker's output pipe (``running.fd``) whenever it has something."""
        self.selector.register(running.fd, selectors.EVENT_READ, running.task_id)

    def watch_exit(self, running: Running) -> None:
        """Get woken the moment the worker exits, not at the next poll (Linux pidfd)."""
        try:
            running.pidfd = os.pidfd_open(running.pid)
        except (AttributeError, OSError):
            running.pidfd = None
            return
        self.selector.register(running.pidfd, selectors.EVENT_READ, ("exit", running.task_id))

    def drain(self, running: Running, *, final: bool = False) -> None:
        """Move what the worker printed into its log; on EOF (or ``final``) close the pipe."""
        if running.fd is None or (left := pump(running.fd, running.log, final=final)):
            return
        self.selector.unregister(running.fd)
        os.close(running.fd)
        running.fd = None
        if running.fifo is not None:
            if left is False:  # end of file: no writer left and nothing in it
                self._keep_spare(running.fifo)
            else:
                running.fifo.unlink(missing_ok=True)
            running.fifo = None

    def _keep_spare(self, fifo: Path) -> None:
        """Keep a finished worker's output pipe for the next worker instead of removing it.

        Only a pipe that reached end of file: no process holds its write end any more (a
        process that escaped the worker's group holding it keeps the pipe out of reuse),
        and it is empty. One spare is enough: starts and exits alternate. :meth:`close`
        removes it; a runner killed with -9 leaves it behind (an empty ``spare.PID.pipe``
        beside the logs, which no attempt's files are named like).
        """
        spare = spare_pipe_path(fifo.parent, os.getpid())
        try:
            os.replace(fifo, spare)
        except OSError:
            fifo.unlink(missing_ok=True)
            return
        self._spare = spare

    def take_spare(self, fifo: Path) -> bool:
        """Rename the spare pipe (:meth:`_keep_spare`) to ``fifo``; False when there is none."""
        spare, self._spare = self._spare, None
        if spare is None:
            return False
        if os.path.dirname(spare) == os.path.dirname(fifo):  # a spare serves its own folder
            try:
                os.replace(spare, fifo)  # also replaces a pipe an abandoned attempt left there
                return True
            except OSError:
                pass
        spare.unlink(missing_ok=True)
        return False

    def close_output(self, running: Running) -> None:
        """Read the last output, stop watching for the exit, close the log: the worker is done."""
        self.drain(running, final=True)
        if running.pidfd is not None:
            self.selector.unregister(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None
        if running.log is not None:
            running.log.close()

    def close(self) -> None:
        if self._spare is not None:
            self._spare.unlink(missing_ok=True)
            self._spare = None
        self.selector.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
