"""Fire and forget (``run --detach``): start workers under a supervisor and exit at once.

For an orchestrator that must not wait; a later run or ``ledger sweep`` collects what
the supervisors wrote next to each log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dispatch_kit.errors import InputError
from dispatch_kit.ledger import TaskRow, Worker, iso
from dispatch_kit.procs.groups import pid_start
from dispatch_kit.runner.files import exit_file_for, lock_file_for, worker_file_for
from dispatch_kit.runner.prepare import Preparer
from dispatch_kit.runner.recovery import Recovery
from dispatch_kit.runner.start import Starter
from dispatch_kit.runner.state import RunState

# Run by ``python -I -c``: argv[1] is the folder holding the dispatch_kit package.
SUPERVISOR_BOOT = (
    "import sys;sys.path.insert(0,sys.argv.pop(1));"
    "from dispatch_kit.procs.supervise import main;sys.exit(main(sys.argv[1:]))"
)


class Detacher:
    """Claim up to ``max_dispatch`` tasks and hand each worker to ``dispatch_kit.procs.supervise``.

    Lays attempts out with ``preparer`` and claims them with ``starter`` as a foreground
    run does; ``recovery`` collects finished detached work first.
    """

    def __init__(self, state: RunState, preparer: Preparer, starter: Starter,
                 recovery: Recovery) -> None:
        self.state = state
        self.preparer = preparer
        self.starter = starter
        self.recovery = recovery

    def detach(self, wip: int | None = None) -> list[dict]:
        """Collect finished detached work, claim up to ``max_dispatch`` tasks, start their
        workers under a supervisor in a new session, and return at once."""
        state = self.state
        self.recovery.recover(adopt=False)
        slots = state.options.max_dispatch
        if wip is not None:
            slots = min(slots, wip - state.ledger.in_flight(state.mission))
        started: list[dict] = []
        if slots <= 0:
            return started
        for row in state.ledger.next_ready(state.mission, limit=slots):
            try:
                item = self._spawn(row)
            except (InputError, OSError) as exc:
                self.starter.give_up(row, exc)
                continue
            if item is not None:
                started.append(item)
        return started

    def _spawn(self, row: TaskRow) -> dict | None:
        """Start the supervisor held at its gate, claim with its pid, then let it go."""
        state = self.state
        cwd, prompt, log_path, command, env = self.preparer.prepare(row)
        timeout = state.timeout(row.id)
        exit_file = exit_file_for(log_path)
        exit_file.unlink(missing_ok=True)
        worker_file_for(log_path).unlink(missing_ok=True)
        # -I: the supervisor ignores PYTHON* variables and finds its package through the
        # path given here, so the worker gets ``env`` exactly as a foreground run gives it.
        argv = [
            sys.executable, "-I", "-c", SUPERVISOR_BOOT, str(Path(__file__).resolve().parents[2]),
            "--timeout", str(timeout),
            "--log", str(log_path), "--log-limit", str(state.options.log_limit),
            "--exit-file", str(exit_file), "--prompt", str(prompt), "--gate",
            "--lock", str(lock_file_for(log_path)),
            "--worker-file", str(worker_file_for(log_path)),
            "--", "/bin/sh", "-c", command,
        ]
        gate_r, gate_w = os.pipe()
        try:
            try:
                proc = subprocess.Popen(
                    argv, cwd=cwd, stdin=gate_r, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, env=env, close_fds=True,
                )
            finally:
                os.close(gate_r)
            result = self.starter.claim(row, Worker(pid=proc.pid, pid_start=pid_start(proc.pid),
                                                    log_path=str(log_path),
                                                    prompt_path=str(prompt)))
            if result.ok:
                os.write(gate_w, b"go\n")
        finally:
            os.close(gate_w)
        if not result.ok:
            proc.wait()
            return None
        state.progress.emit("dispatched", row.id, f"dispatched {row.id} (attempt {row.attempt}/"
                            f"{row.max_attempts}, pid {proc.pid}, detached)",
                            attempt=row.attempt, pid=proc.pid, log=str(log_path))
        return {"id": row.id, "attempt": row.attempt, "max_attempts": row.max_attempts,
                "pid": proc.pid, "lease_expires": iso(result.lease_expires),
                "log": str(log_path)}
