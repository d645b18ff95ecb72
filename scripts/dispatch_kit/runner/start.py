"""Starting a worker so that it runs at most once and survives the runner.

The claim and the process are tied together by a gate: the worker waits until the ledger
has committed its pid, so no worker ever runs unrecorded.
"""

from __future__ import annotations

import os
import subprocess
import time

from dispatch_kit.errors import InputError
from dispatch_kit.ledger import ClaimResult, TaskRow, Worker
from dispatch_kit.procs.groups import BoundedLog, pid_start
from dispatch_kit.procs.watchdog import GRACE
from dispatch_kit.runner.collect import failing_entry
from dispatch_kit.runner.events import Events
from dispatch_kit.runner.files import pipe_path
from dispatch_kit.runner.prepare import Preparer
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.state import Running, RunState

# Run by /bin/sh as the worker's process-group leader: wait for the runner's go
# (EOF instead means the runner died before recording this worker: do nothing),
# then read the prompt on stdin and run the worker command in this same shell.
GATE = 'IFS= read -r _dk_go || exit 97; exec <"$1"; _dk_cmd=$2; set --; eval "$_dk_cmd"'


class Starter:
    """Claiming tasks and starting their workers; a start that fails is a failed attempt.

    Adds each worker it starts to ``state.running`` and to ``events``; ``preparer``
    lays out the attempt. Sets ``state.contended`` once another runner wins a claim.
    """

    def __init__(self, state: RunState, events: Events, preparer: Preparer) -> None:
        self.state = state
        self.events = events
        self.preparer = preparer
        self._next_lease: float | None = None  # claim_next's lease (see start_next)

    def claim(self, row: TaskRow, worker: Worker | None = None) -> ClaimResult:
        """Claim ``row`` for this runner, with its worker's pid when one is started."""
        state = self.state
        result = state.ledger.claim(
            state.mission, row.id, state.holder, state.lease(row.id), holder_pid=os.getpid(),
            holder_start=state.me_start, worker=worker, expect_attempt=row.attempt,
        )
        if state.trace is not None and worker is not None and result.ok:
            state.trace.attempt_claimed(row.id, result.attempt_id)  # the span keeps its ids
        return result

    def start_next(self) -> bool:
        """Claim the next ready task first, then start its worker; False when none is ready.

        For runners sharing a mission (after one lost a race): ``claim_next`` passes
        over tasks other runners are claiming at the same moment, so no race is lost
        and no prompt is rendered nor worker started for a task another runner gets.
        The claim holds this runner's pid until the worker's is recorded: if the runner
        dies in between, its gated worker exits unstarted and a sweep gives the claim
        back without spending the attempt.
        """
        state = self.state
        if self._next_lease is None:  # the longest any task may need; set exactly at dispatch
            self._next_lease = max(state.lease(t) for t in state.tasks)
        claimed = state.ledger.claim_next(state.mission, state.holder, self._next_lease,
                                          holder_pid=os.getpid(), holder_start=state.me_start)
        if claimed is None:
            return False
        self.start(claimed.task or state.ledger.task(state.mission, claimed.task_id), claimed)
        return True

    def start(self, row: TaskRow, claimed: ClaimResult | None = None) -> None:
        """Start one worker so that it survives this runner and never runs twice.

        The worker is started first but waits on a gate (a pipe on its stdin);
        the gate opens only once the ledger has committed the claim with its
        pid. A runner killed before that commit leaves a worker that sees the
        gate close and exits without doing anything, so there is never an
        unrecorded worker, and a lost race for the claim costs nothing either.

        Output goes through a named pipe beside the log, named after this
        runner's pid. The worker also holds a spare read end, so if the runner
        dies its writes wait instead of failing, and the next runner reopens the
        pipe by name and carries on logging. The spare is an open of its own,
        not the runner's read end inherited: that would share the runner's open
        file, and a worker clearing O_NONBLOCK on it would leave the runner's
        reads blocking.

        Surviving the runner is bounded: before the gate opens, the runner's
        watchdog (:mod:`dispatch_kit.procs.watchdog`) is told to kill the worker's
        process group at its time limit plus a few seconds, which it does even
        if this runner was killed with -9. The claim's lease (time limit plus two
        minutes, renewed while the runner lives) therefore never runs out while
        the worker's group lives, and another host's retry never overlaps it.
        """
        state = self.state
        opened: list[int] = []
        try:
            cwd, prompt, log_path, command, env = self.preparer.prepare(row)
            fifo = pipe_path(log_path, os.getpid())
            try:
                os.mkfifo(fifo, 0o600)
            except FileExistsError:  # left by an attempt this runner abandoned
                fifo.unlink()
                os.mkfifo(fifo, 0o600)
            read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            opened.append(read_fd)
            write_fd = os.open(fifo, os.O_WRONLY)
            opened.append(write_fd)
            spare_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            opened.append(spare_fd)
            gate_r, gate_w = os.pipe()
            opened += [gate_r, gate_w]
            proc = subprocess.Popen(
                ["/bin/sh", "-c", GATE, "dispatch-kit-worker", str(prompt), command],
                cwd=cwd, stdin=gate_r, stdout=write_fd, stderr=write_fd, pass_fds=(spare_fd,),
                start_new_session=True, env=env,
            )
        except (InputError, OSError) as exc:
            for fd in opened:
                os.close(fd)
            self.give_up(row, exc, claimed)
            return
        for fd in (write_fd, spare_fd, gate_r):
            os.close(fd)
        log = str(log_path)
        worker = Worker(pid=proc.pid, pid_start=pid_start(proc.pid), log_path=log,
                        prompt_path=str(prompt))
        try:
            result = self.claim(row, worker) if claimed is None else \
                self._dispatch_claimed(row, claimed, worker)
        except BaseException:
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            raise
        if not result.ok:  # another holder got there first: the gated worker just exits
            state.contended = True
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            fifo.unlink(missing_ok=True)
            return
        timeout = state.timeout(row.id)
        running = Running(
            task_id=row.id, attempt=row.attempt, max_attempts=row.max_attempts,
            attempt_id=result.attempt_id, pid=proc.pid, pid_start=worker.pid_start,
            deadline=time.time() + timeout, timeout=timeout, proc=proc, fd=read_fd,
            log=BoundedLog(log_path, state.options.log_limit), log_path=log, fifo=fifo,
        )
        state.running[row.id] = running
        self.events.watch_output(running)
        self.events.watch_exit(running)
        # Bounded before it may run: were this runner killed with -9 now, the watchdog still
        # stops the worker by its time limit, before its lease runs out
        # (dispatch_kit.procs.watchdog).
        state.watchdog.watch(proc.pid, worker.pid_start, timeout + GRACE)
        # Open the gate only now: a Ctrl-C at any earlier moment finds the worker in
        # state.running, so it is stopped and its claim given back, never left working.
        os.write(gate_w, b"go\n")
        os.close(gate_w)
        state.progress.emit("dispatched", row.id, f"dispatched {row.id} (attempt {row.attempt}/"
                            f"{row.max_attempts}, pid {proc.pid})", attempt=row.attempt,
                            pid=proc.pid, log=log)

    def _dispatch_claimed(self, row: TaskRow, claimed: ClaimResult,
                          worker: Worker) -> ClaimResult:
        """Record the worker of a task claimed before it started (see ``start_next``)."""
        state = self.state
        state.ledger.mark_dispatched(
            state.mission, row.id, state.holder, pid=worker.pid, pid_start=worker.pid_start,
            lease=state.lease(row.id), log_path=worker.log_path,
            prompt_path=worker.prompt_path, fetch=False,
        )
        if state.trace is not None:
            state.trace.attempt_claimed(row.id, claimed.attempt_id)
        return claimed

    def give_up(self, row: TaskRow, exc: Exception,
                claimed: ClaimResult | None = None) -> None:
        """The worker could not even start (bad template, cwd not creatable): a failed attempt,
        so that an error that repeats ends in a failed task rather than a loop."""
        state = self.state
        result = self.claim(row) if claimed is None else claimed
        if not result.ok:
            return
        message = f"the runner could not start the worker: {exc}"
        state.progress.emit("error", row.id, f"error {row.id}: {message}", error=str(exc))
        record = state.ledger.record(state.mission, row.id, failing_entry(row.id, message),
                                     expect_attempt=result.attempt_id, actor=state.holder)
        emit_record(state.progress, record)
