"""Supervisor of one detached worker: time limit, bounded log, exit status on disk.

``dispatch-kit run --detach`` exits as soon as its workers start, so nobody is
left to stop a hung worker or to keep a flooding one from filling the disk.
This small process (started in its own session, one per worker) does both and
then writes ``{"exit_code", "timed_out", "duration"}`` next to the log, which
is what a later ``run`` or ``ledger sweep`` reads when it collects the result.

Run as ``python -m dispatch_kit.procs.supervise --timeout S --log F --exit-file F -- CMD...``;
it imports only the standard library, :mod:`dispatch_kit.procs.groups` and
:mod:`dispatch_kit.procs.reaper` (on Linux it adopts the worker's orphans and kills
them when the worker ends).

With ``--lock F`` it holds ``F`` locked (flock) and hands the locked descriptor
to the worker, and records the worker's pid in ``--worker-file``: a supervisor
killed with -9 leaves the lock held by its worker, so a later run sees that the
attempt may still be alive and never starts the next one beside it
(:func:`dispatch_kit.procs.groups.lock_held`). A watchdog
(:mod:`dispatch_kit.procs.watchdog`) kills the worker's process group at the time limit
plus a few seconds even then, so a worker never outlives the lease its claim was given
(time limit + 2 minutes) and another host's retry never overlaps it.

The worker inherits this process's environment unchanged: ``run --detach``
starts the supervisor with ``python -I`` and puts the package on ``sys.path``
itself, so no PYTHONPATH of dispatch-kit's reaches a worker.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from dispatch_kit.procs.groups import BoundedLog, kill_group, pid_start, pump


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dispatch_kit.procs.supervise")
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--log-limit", type=int, default=1 << 20)
    parser.add_argument("--exit-file", required=True)
    parser.add_argument("--prompt", help="file the worker reads on stdin")
    parser.add_argument("--lock", help="file to hold locked, with the worker, while it lives")
    parser.add_argument("--worker-file", help="where to record the worker's pid and start")
    parser.add_argument("--gate", action="store_true",
                        help="wait for a line on stdin first; EOF means the dispatcher died "
                        "before recording this worker, so do nothing")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")

    if args.gate and not sys.stdin.buffer.readline().endswith(b"\n"):
        return 97
    started = time.time()
    from dispatch_kit.procs import reaper

    reaper.become_subreaper()  # the worker's setsid'd descendants come back here, then die
    lock_fd = _take_lock(args.lock) if args.lock else None
    log = BoundedLog(Path(args.log), args.log_limit)
    from dispatch_kit.procs.watchdog import GRACE, Watchdog

    watchdog = Watchdog()  # bounds the worker even if this supervisor is killed with -9
    watchdog.start()
    stdin = open(args.prompt, "rb") if args.prompt else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True,
        pass_fds=(lock_fd,) if lock_fd is not None else (),
    )
    watchdog.watch(proc.pid, pid_start(proc.pid), args.timeout + GRACE)
    if args.prompt:
        stdin.close()
    if args.worker_file:
        _write_json(Path(args.worker_file), {"pid": proc.pid, "start": pid_start(proc.pid)})
    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        kill_group(proc.pid, grace=0.5)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    deadline = started + args.timeout
    timed_out = False
    open_pipe = True
    while True:
        code = proc.poll()
        if code is not None:
            break
        if time.time() >= deadline:
            timed_out = True
            kill_group(proc.pid)
            proc.wait()
            break
        if not open_pipe:
            time.sleep(min(0.2, max(0.0, deadline - time.time())))
            continue
        if selector.select(min(0.5, max(0.0, deadline - time.time()))):
            open_pipe = pump(fd, log)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything it left running in its group
    except (ProcessLookupError, PermissionError):
        pass
    reaper.kill_orphans()  # and anything that left the group (Linux; see dispatch_kit.procs.reaper)
    watchdog.drop(proc.pid)
    watchdog.close()
    if open_pipe:
        pump(fd, log, final=True)
    log.close()
    status = {
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "stopped_by_signal": stopped[0] if stopped else None,
        "duration": round(time.time() - started, 3),
        "pid": proc.pid,
    }
    _write_json(Path(args.exit_file), status)
    return 0


def _take_lock(path: str) -> int:
    """Open and flock ``path``; the descriptor is inheritable so the worker shares the lock."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
