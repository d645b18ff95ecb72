"""A worker never outlives its time limit, even when whatever started it was killed with -9.

Why: a lease on a shared ledger (PostgreSQL) is the only thing another machine can judge a
claim by; pids prove nothing there. The lease runs until the worker's time limit plus
``LEASE_MARGIN`` (2 minutes, room for the criteria check), renewed by the runner while it
lives. Without this module, a runner killed with -9 leaves its worker running with nobody
to enforce the time limit: the lease runs out, a runner on another host retries the task,
and the two attempts overlap.

So every runner (and every detached worker's supervisor) has one small watchdog process,
started in a session of its own so that a signal to the runner's process group does not
reach it. The owner tells it, through a pipe only the owner writes, ``watch PID START
SECONDS`` when a worker starts (before the worker's gate opens) and ``drop PID`` when it is
done. The watchdog kills a worker's process group ``SECONDS`` after it was told (the time
limit plus :data:`GRACE`), whether or not its owner still lives: a live owner stops the
worker at its deadline itself, so the watchdog only ever acts for a dead or hung one.

What this guarantees (Linux and other Unixes; stdlib only):

- a worker's process group is gone by its time limit + ``GRACE`` seconds after it
  started, measured on the boot clock (which also counts a suspended machine), so before
  its lease (time limit + ``LEASE_MARGIN`` from the claim, on the database's clock) runs
  out: by the time another host may retry, nothing of the attempt's process group lives;
- a runner killed with -9 does not take its workers with it: on the same host the next
  runner adopts them (issue 13's design) and the watchdog still bounds them;
- when the owner is gone (end of file on the pipe) and a worker's leader has exited, the
  rest of its process group is killed at once, as the owner would have done.

What it cannot guarantee: processes that left the worker's process group (``setsid``) are
killed only by a live runner or supervisor (:mod:`dispatch_kit.procs.reaper`); a watchdog
itself killed with -9 (a kill of every process of the machine or of the user) guards
nothing; a host frozen for longer than ``LEASE_MARGIN - GRACE`` (about two minutes) can
wake with its worker still running after the lease expired.

A pid is only trusted with its start time (:func:`dispatch_kit.procs.groups.pid_start`): a leader
whose number was reused is never signalled, and a group whose leader is gone is signalled
only while it still has members (the kernel does not reuse a number that is still some
group's id).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE = 5.0  # after the time limit: a live owner's own timeout handling comes first

# Run by ``python -I -c``: argv[1] is the folder holding the dispatch_kit package.
BOOT = ("import sys;sys.path.insert(0,sys.argv.pop(1));"
        "from dispatch_kit.procs.watchdog import main;sys.exit(main())")


def clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (Linux)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


class Watchdog:
    """The owner's side: start the watchdog on first use, tell it about workers.

    The watchdog is a fork of the owner when the owner runs no other thread (about a
    millisecond; it imports nothing, never touches what it inherited but its pipe, and
    leaves with ``os._exit``), else a new ``python -I`` process (some 25 ms of CPU)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._fd: int | None = None
        self.failed = False

    def start(self) -> bool:
        """Start the watchdog now (else at the first :meth:`watch`); False if it cannot run."""
        if self._fd is None and not self.failed:
            import threading

            try:
                if hasattr(os, "fork") and threading.active_count() == 1:
                    self._fork()
                else:
                    self._spawn()
            except OSError:
                self.failed = True  # no watchdog: the owner's own deadline still holds
                return False
            os.set_inheritable(self._fd, False)
            from dispatch_kit.procs import reaper

            reaper.spare(self.pid)  # it must outlive a run that ends killing its orphans
        return self._fd is not None

    def _send(self, line: str) -> None:
        if not self.start():
            return
        assert self._fd is not None
        try:
            os.write(self._fd, line.encode())
        except OSError:
            self.failed = True

    def _fork(self) -> None:
        from dispatch_kit.procs import groups as procs  # noqa: F401 - imported here: the child imports nothing

        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the watchdog
            try:
                os.setsid()
                os.dup2(read_fd, 0)
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 1)
                os.dup2(null, 2)
                os.closerange(3, 1 << 16)  # the owner's database socket, pipes, logs
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                main(0)
            finally:
                os._exit(0)
        os.close(read_fd)
        self.pid, self._fd = pid, write_fd

    def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOT, str(Path(__file__).resolve().parents[2])],
                stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        except OSError:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        self.pid, self._fd = self._proc.pid, write_fd

    def watch(self, pid: int, start: str | None, seconds: float) -> None:
        """Kill ``pid``'s process group ``seconds`` from now unless it is dropped first."""
        if pid <= 1:
            return  # unknown: never a group to kill (0 would be the watchdog's own)
        self._send(f"watch {pid} {start or '-'} {max(0.0, seconds):.3f}\n")

    def drop(self, pid: int) -> None:
        if self._fd is not None:
            self._send(f"drop {pid}\n")

    def close(self) -> None:
        """Close the pipe: the watchdog exits once nothing it watches is left."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=2.0)  # at once unless a worker is still watched
            except subprocess.TimeoutExpired:
                self._proc.returncode = 0  # it guards a live worker on its own: leave it be
            return
        assert self.pid is not None
        try:  # reap it if it ends at once (nothing watched); else it runs on, guarding
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pidfd = None
        if pidfd is not None:
            try:
                select.select([pidfd], [], [], 2.0)
            finally:
                os.close(pidfd)
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _kill(pid: int, start: str | None, *, grace: float) -> None:
    """Stop the group ``pid`` led, if it is still that group (see the module's docstring)."""
    from dispatch_kit.procs.groups import _group_has_live_members, kill_group, pid_start

    now_start = pid_start(pid)
    if now_start is not None and start is not None and now_start != start:
        return  # the number belongs to another process: the old group is long gone
    if now_start is None and not _group_has_live_members(pid):
        return
    kill_group(pid, grace=grace)


def serve(fd: int) -> None:
    """Read ``watch``/``drop`` lines from ``fd``; kill groups at their deadlines; return
    once the pipe is closed and nothing is watched."""
    from dispatch_kit.procs.groups import pid_alive

    watched: dict[int, tuple[str | None, float]] = {}
    buffer = b""
    owner = True
    while owner or watched:
        now = clock()
        for pid, (start, deadline) in list(watched.items()):
            if now >= deadline:
                _kill(pid, start, grace=1.0)
                del watched[pid]
            elif not owner and not pid_alive(pid, start):
                _kill(pid, None, grace=0.0)  # the leader ended: what it left in its group
                del watched[pid]
        wait = min((d for _, d in watched.values()), default=now + 3600.0) - clock()
        if not owner:
            wait = min(wait, 0.5)  # nobody drops finished workers any more: look at them
        ready = select.select([fd] if owner else [], [], [], max(0.0, wait))[0]
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            owner = False
            continue
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            parts = line.decode().split()
            if len(parts) == 4 and parts[0] == "watch" and int(parts[1]) > 1:
                watched[int(parts[1])] = (None if parts[2] == "-" else parts[2],
                                          clock() + float(parts[3]))
            elif len(parts) == 2 and parts[0] == "drop":
                watched.pop(int(parts[1]), None)


def main(fd: int = 0) -> int:
    """Watch what is written to ``fd`` (standard input) until it closes and nothing is left."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    serve(fd)
    return 0
