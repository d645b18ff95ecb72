"""What the loop sleeps on: worker output pipes, worker exits and a wake-up pipe.

One ``select`` covers every worker, so many workers cost no polling. The starter and
the recovery register the workers they start or adopt here; the watcher drains and
closes them; a check finishing on a thread wakes the loop through the wake-up pipe.
"""

from __future__ import annotations

import os
import selectors

from dispatch_kit.procs.groups import pump
from dispatch_kit.runner.state import Running


class Events:
    """The selector and its wake-up pipe, and the per-worker descriptors registered in it.

    A key's data says what woke the loop: ``None`` the wake-up pipe, ``("exit", task_id)``
    a worker's exit (pidfd), a bare ``task_id`` that worker's output.
    """

    def __init__(self) -> None:
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
        if running.fd is None or pump(running.fd, running.log, final=final):
            return
        self.selector.unregister(running.fd)
        os.close(running.fd)
        running.fd = None
        if running.fifo is not None:
            running.fifo.unlink(missing_ok=True)

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
        self.selector.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
