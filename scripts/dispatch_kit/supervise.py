"""Supervisor of one detached worker: time limit, bounded log, exit status on disk.

``dispatch-kit run --detach`` exits as soon as its workers start, so nobody is
left to stop a hung worker or to keep a flooding one from filling the disk.
This small process (started in its own session, one per worker) does both and
then writes ``{"exit_code", "timed_out", "duration"}`` next to the log, which
is what a later ``run`` or ``ledger sweep`` reads when it collects the result.

Run as ``python -m dispatch_kit.supervise --timeout S --log F --exit-file F -- CMD...``;
it imports only the standard library and :mod:`dispatch_kit.procs`.
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

from dispatch_kit.procs import BoundedLog, kill_group, pump


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dispatch_kit.supervise")
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--log-limit", type=int, default=1 << 20)
    parser.add_argument("--exit-file", required=True)
    parser.add_argument("--prompt", help="file the worker reads on stdin")
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
    log = BoundedLog(Path(args.log), args.log_limit)
    stdin = open(args.prompt, "rb") if args.prompt else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True,
    )
    if args.prompt:
        stdin.close()
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
    exit_file = Path(args.exit_file)
    tmp = exit_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(status) + "\n")
    os.replace(tmp, exit_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
