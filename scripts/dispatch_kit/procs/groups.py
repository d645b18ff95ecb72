"""Process facts the ledger and runner rely on: is this pid still our worker, kill its group.

A pid alone is a weak identity: after a worker dies the kernel may hand its
number to an unrelated process, and a sweep that trusted the bare number would
either keep a dead claim forever or kill a stranger. Pairing the pid with the
process start time (``/proc/PID/stat`` field 22 on Linux) closes that hole.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import time
from functools import cache
from pathlib import Path


@cache
def hostname() -> str:
    return socket.gethostname()


def pid_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None where unknown."""
    raw = _proc_stat(pid)
    if raw is None:
        return None
    # Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _proc_stat(pid: int) -> bytes | None:
    """``/proc/PID/stat`` (None without procfs or once the process is gone).

    One ``read`` of a raw descriptor, no file object: the file is a few hundred bytes, and
    the runner reads it for every worker it starts.
    """
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    """True while ``pid`` runs and, when ``start`` is known, is still the same process."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    raw = _proc_stat(pid)
    if raw is None:
        # No procfs (macOS, BSD): signal 0 succeeded, that is all we can know.
        # With procfs, the process vanished between the two looks.
        return not os.path.exists("/proc/self")
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields and fields[0] in (b"Z", b"X"):
        return False  # exited, waiting to be reaped
    if start is not None and len(fields) > 19 and fields[19].decode() != start:
        return False  # the number was reused by another process
    return True


def lock_held(path: str | Path) -> bool:
    """Whether some process holds ``path`` locked with ``flock`` (False when there is no file).

    A detached worker inherits its supervisor's locked descriptor, so the lock
    outlives a supervisor killed with -9 for exactly as long as the worker
    (or a child that kept the descriptor) lives.
    """
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the shared lock taken above
    return False


def holders(path: str | Path) -> list[int]:
    """Pids with ``path`` open (Linux procfs; empty elsewhere or when unreadable)."""
    target = os.path.realpath(path)
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return found


def kill_group(pid: int, *, grace: float = 1.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL it if anything is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if sig == signal.SIGKILL:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            if not pid_alive(pid) and not _group_has_live_members(pid):
                return
            time.sleep(0.02)


def _group_has_live_members(pgid: int) -> bool:
    """Whether any non-zombie process is still in group ``pgid`` (Linux; True where unknown)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False


def pump(fd: int, log: BoundedLog | None, *, final: bool = False) -> bool:
    """Copy what a non-blocking pipe holds into ``log``; False once it is finished.

    Finished means end of file, a read error, or, with ``final`` (the writer is
    gone), nothing left to read now: whatever still holds the pipe open has
    escaped the worker's process group and is not waited for.
    """
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return not final
        except OSError:
            return False
        if not data:
            return False
        if log is not None:
            log.write(data)


class BoundedLog:
    """A log file that keeps the first ``head`` bytes and the last ``tail`` bytes of a stream.

    A worker that prints gigabytes must not fill the disk or the runner's
    memory; the start (what it set out to do) and the end (how it died) are the
    parts worth reading, so the middle is dropped and a marker says how much.
    """

    def __init__(self, path: Path, limit: int = 1 << 20, *, append: bool = False) -> None:
        self.path = path
        self.head = max(0, limit // 4)
        self.tail = max(0, limit - self.head)
        self.written = 0
        self.dropped = 0
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        # Unbuffered: what was read from the worker reaches the file at once, so a
        # runner killed with -9 loses none of the head (the next runner appends).
        self._file = open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115
        if append:
            # Continuing a log another runner started: what it wrote counts as head.
            self.written = min(self.head, self._file.tell())

    def write(self, data: bytes) -> None:
        if self.written < self.head:
            room = self.head - self.written
            self._file.write(data[:room])
            self.written += min(room, len(data))
            data = data[room:]
        if not data:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail and self._tail_size - len(self._tail[0]) >= self.tail:
            self.dropped += len(self._tail[0])
            self._tail_size -= len(self._tail.popleft())
        if self._tail_size > self.tail and self._tail:
            cut = self._tail_size - self.tail
            self._tail[0] = self._tail[0][cut:]
            self._tail_size -= cut
            self.dropped += cut

    def close(self) -> None:
        if self._file.closed:
            return
        if self.dropped:
            self._file.write(f"\n[dispatch-kit: {self.dropped} bytes of output omitted]\n".encode())
        for chunk in self._tail:
            self._file.write(chunk)
        self._tail.clear()
        self._file.close()
