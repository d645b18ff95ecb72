"""Run one command in its own process group, with a deadline and bounded output tails.

Exit criteria are arbitrary commands written by people and agents. Three
things go wrong with them in practice, and each would take the checker down
with it if the command ran the obvious way (``subprocess.run`` with
``capture_output`` and ``timeout``):

- a command that hangs leaves its children behind: killing ``sh`` does not kill
  the ``sleep`` it started, and that sleep keeps the output pipe open, so the
  reader waits forever. Every command here gets its own session and process
  group; a timeout signals the whole group (SIGTERM, then SIGKILL after a short
  grace), and leftovers of a command that exited normally are killed too;
- a command that prints gigabytes fills memory when all output is kept. Here
  both pipes are read continuously and only the last ``tail_bytes`` of each are
  kept;
- a Ctrl-C reaches only the checker's own process group, not the criteria in
  their sessions. :class:`ProcessGroups` tracks every live group so the caller
  can stop them all.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

CHUNK = 65536
POLL = 0.1  # how often an idle command is checked for exit, deadline and cancellation
GRACE = 0.3  # SIGTERM to SIGKILL
DRAIN = 0.2  # how long pipes may stay open after the command exited (a background child)


class Tail:
    """The last ``limit`` bytes of a stream, and how many bytes passed in total."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def _bytes(self) -> bytes:
        """The kept bytes, less a character cut in two where the tail starts."""
        data = bytes(self.data)
        if self.truncated:
            skip = 0
            while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
                skip += 1
            data = data[skip:]
        return data

    def text(self) -> str:
        """The tail as text: bad UTF-8 becomes U+FFFD, so the JSON report is always valid."""
        return self._bytes().decode("utf-8", errors="replace")

    def is_utf8(self) -> bool:
        """Whether the kept tail decodes as UTF-8 (a character cut at the end still counts)."""
        data = self._bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return exc.reason == "unexpected end of data" and exc.end == len(data)
        return True


class ProcessGroups:
    """Every live process group started through :func:`run`, so all can be stopped at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self.cancelled = threading.Event()

    def add(self, pgid: int) -> bool:
        """Register a new group; False when a cancel already happened (the caller must stop it)."""
        with self._lock:
            if self.cancelled.is_set():
                return False
            self._groups.add(pgid)
            return True

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    def cancel(self, sig: int = signal.SIGTERM) -> None:
        """Stop starting commands and signal every running group (workers escalate to SIGKILL)."""
        with self._lock:
            self.cancelled.set()
            for pgid in self._groups:
                _signal_group(pgid, sig)

    def kill_remaining(self) -> None:
        with self._lock:
            for pgid in self._groups:
                _signal_group(pgid, signal.SIGKILL)


@dataclass
class Outcome:
    """What happened to one command. ``returncode`` is None when it was killed by us."""

    returncode: int | None
    duration: float
    stdout: Tail
    stderr: Tail
    timed_out: bool = False
    cancelled: bool = False
    start_error: OSError | None = None


def run(
    argv: list[str],
    *,
    cwd: str,
    timeout: float,
    tail_bytes: int = 4096,
    groups: ProcessGroups | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run ``argv`` in ``cwd`` (no shell unless argv asks for one) and wait at most ``timeout``.

    ``env`` is the command's whole environment (default: this process's).
    """
    start = time.monotonic()
    out, err = Tail(tail_bytes), Tail(tail_bytes)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            bufsize=0,
        )
    except OSError as exc:
        return Outcome(None, time.monotonic() - start, out, err, start_error=exc)
    pgid = proc.pid  # session leader: its pid is the group id
    registered = groups.add(pgid) if groups else True
    reason = None if registered else "cancel"
    deadline = start + timeout
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    watch = _ExitWatch(proc.pid)
    try:
        if reason is None:
            reason = _pump(watch, selector, streams, deadline, groups)
        if reason is None:
            reason = _await_exit(watch, deadline, groups)
        ended = time.monotonic()
        if reason is not None:
            _signal_group(pgid, signal.SIGTERM)
            _await_exit(watch, time.monotonic() + GRACE, None)
            ended = time.monotonic()
        # Kill what is left of the group (a background child of a command that finished, or
        # anything that ignored SIGTERM) while the unreaped leader still pins the group id.
        _signal_group(pgid, signal.SIGKILL)
        if groups:
            groups.discard(pgid)
        returncode = proc.wait()
        _drain(selector, streams, time.monotonic() + DRAIN)
    finally:
        watch.close()
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    return Outcome(
        None if reason else returncode,
        ended - start,
        out,
        err,
        timed_out=reason == "timeout",
        cancelled=reason == "cancel",
    )


class _ExitWatch:
    """Learns that the command exited without reaping it, so its pid keeps pinning the group.

    On Linux a pidfd becomes readable the moment the process exits, so no time
    is lost polling; elsewhere ``waitid(WNOWAIT)`` is polled with short sleeps.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exited = False
        self.fd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(pid)
            except OSError:
                self.fd = None

    def poll(self) -> bool:
        if not self.exited:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = True
            self.exited = bool(info) and getattr(info, "si_pid", 1) != 0
        return self.exited

    def wait(self, timeout: float) -> bool:
        """True once the command has exited, waiting at most ``timeout`` seconds."""
        if self.poll() or timeout <= 0:
            return self.exited
        if self.fd is not None:
            select.select([self.fd], [], [], timeout)
            return self.poll()
        end = time.monotonic() + timeout
        delay = 0.0002
        while not self.poll():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.02)
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _pump(
    watch: _ExitWatch,
    selector: selectors.BaseSelector,
    streams: dict[int, Tail],
    deadline: float,
    groups: ProcessGroups | None,
) -> str | None:
    """Read both pipes until they close; 'timeout' or 'cancel' when stopped early."""
    exit_fd = watch.fd
    if exit_fd is not None:
        selector.register(exit_fd, selectors.EVENT_READ)
    exited_at = None
    try:
        while any(fd in selector.get_map() for fd in streams):
            now = time.monotonic()
            if groups and groups.cancelled.is_set():
                return "cancel"
            if now >= deadline:
                return "timeout"
            if exited_at is None and exit_fd is None and watch.poll():
                exited_at = now
            if exited_at is not None and now - exited_at >= DRAIN:
                return None  # a background child holds the pipes; the command itself is done
            wait = min(deadline - now, POLL)
            if exited_at is not None:
                wait = min(wait, exited_at + DRAIN - now)
            for key, _ in selector.select(wait):
                if key.fd == exit_fd:
                    selector.unregister(exit_fd)
                    exit_fd = None
                    exited_at = time.monotonic() if watch.poll() else None
                else:
                    _read(selector, key.fd, streams)
    finally:
        if exit_fd is not None:
            selector.unregister(exit_fd)
    return None


def _read(selector: selectors.BaseSelector, fd: int, streams: dict[int, Tail]) -> None:
    chunk = os.read(fd, CHUNK)
    if chunk:
        streams[fd].feed(chunk)
    else:
        selector.unregister(fd)


def _drain(selector: selectors.BaseSelector, streams: dict[int, Tail], until: float) -> None:
    """Collect what is still buffered in the pipes once the group is gone."""
    while selector.get_map():
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        for key, _ in selector.select(remaining):
            _read(selector, key.fd, streams)


def _await_exit(watch: _ExitWatch, deadline: float, groups: ProcessGroups | None) -> str | None:
    """Wait (without reaping) until the command exits; 'timeout' or 'cancel' otherwise."""
    while True:
        remaining = deadline - time.monotonic()
        if watch.wait(min(remaining, POLL)):
            return None
        if groups and groups.cancelled.is_set():
            return "cancel"
        if remaining <= 0:
            return "timeout"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
