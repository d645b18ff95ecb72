"""Starting a worker so that it runs at most once and survives the runner.

The claim and the process are tied together by a gate: the worker waits until the ledger
has committed its pid, so no worker ever runs unrecorded.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

from dispatch_kit.confine import Escape, task_folder
from dispatch_kit.errors import InputError
from dispatch_kit.ledger import ClaimResult, TaskRow, Worker
from dispatch_kit.procs import BoundedLog, pid_start
from dispatch_kit.runner.collect import failing_entry
from dispatch_kit.runner.files import pipe_path
from dispatch_kit.runner.progress import emit_record
from dispatch_kit.runner.prompts import build_prompt, worker_command, worker_env
from dispatch_kit.runner.state import Running
from dispatch_kit.runner.watch import Watching
from dispatch_kit.watchdog import GRACE

# Run by /bin/sh as the worker's process-group leader: wait for the runner's go
# (EOF instead means the runner died before recording this worker: do nothing),
# then read the prompt on stdin and run the worker command in this same shell.
GATE = 'IFS= read -r _dk_go || exit 97; exec <"$1"; _dk_cmd=$2; set --; eval "$_dk_cmd"'


class Starting(Watching):
    """Preparing, claiming and starting workers; a start that fails is a failed attempt."""

    def _prepare(self, row: TaskRow) -> tuple[Path, Path, Path, str, dict[str, str]]:
        task = self.tasks[row.id]
        # Resolved now, not when the run began: an earlier worker may have swapped a folder
        # for a symlink out of the workspace (dispatch_kit.confine).
        try:
            cwd = task_folder(self.plan.workspace, task.cwd)
            cwd.mkdir(parents=True, exist_ok=True)
            cwd = task_folder(self.plan.workspace, task.cwd)
        except Escape as exc:
            raise InputError(f"refused to start the worker: {exc}") from None
        folder = self.runs
        if not self._runs_made:
            folder.mkdir(parents=True, exist_ok=True)
            self._runs_made = True
        prompt = folder / f"{row.id}.attempt-{row.attempt}.prompt.md"
        text = self._prompts.pop((row.id, row.attempt), None)
        prompt.write_text(text if text is not None else
                          build_prompt(self.collector.task_plan(row.id), row, task, cwd))
        log = folder / f"{row.id}.attempt-{row.attempt}.log"
        command = worker_command(self.opts.worker, prompt, row.id, row.attempt, cwd)
        env = worker_env(self.base_env, row.id, row.attempt, row.max_attempts, prompt, task.env)
        return cwd, prompt, log, command, env

    def _claim(self, row: TaskRow, worker: Worker | None = None) -> ClaimResult:
        return self.ledger.claim(
            self.mission, row.id, self.holder, self._lease(row.id), holder_pid=os.getpid(),
            holder_start=self.me_start, worker=worker, expect_attempt=row.attempt,
        )

    def _start_next(self) -> bool:
        """Claim the next ready task first, then start its worker; False when none is ready.

        For runners sharing a mission (after one lost a race): ``claim_next`` passes
        over tasks other runners are claiming at the same moment, so no race is lost
        and no prompt is rendered nor worker started for a task another runner gets.
        The claim holds this runner's pid until the worker's is recorded: if the runner
        dies in between, its gated worker exits unstarted and a sweep gives the claim
        back without spending the attempt.
        """
        if self._next_lease is None:  # the longest any task may need; set exactly at dispatch
            self._next_lease = max(self._lease(t) for t in self.tasks)
        claimed = self.ledger.claim_next(self.mission, self.holder, self._next_lease,
                                         holder_pid=os.getpid(), holder_start=self.me_start)
        if claimed is None:
            return False
        self._start(claimed.task or self.ledger.task(self.mission, claimed.task_id), claimed)
        return True

    def _start(self, row: TaskRow, claimed: ClaimResult | None = None) -> None:
        """Start one worker so that it survives this runner and never runs twice.

        The worker is started first but waits on a gate (a pipe on its stdin);
        the gate opens only once the ledger has committed the claim with its
        pid. A runner killed before that commit leaves a worker that sees the
        gate close and exits without doing anything, so there is never an
        unrecorded worker, and a lost race for the claim costs nothing either.

        Output goes through a named pipe beside the log, named after this
        runner's pid. The worker also holds a spare read end, so if the runner
        dies its writes wait instead of failing, and the next runner reopens the
        pipe by name and carries on logging.

        Surviving the runner is bounded: before the gate opens, the runner's
        watchdog (:mod:`dispatch_kit.watchdog`) is told to kill the worker's
        process group at its time limit plus a few seconds, which it does even
        if this runner was killed with -9. The claim's lease (time limit plus two
        minutes, renewed while the runner lives) therefore never runs out while
        the worker's group lives, and another host's retry never overlaps it.
        """
        opened: list[int] = []
        try:
            cwd, prompt, log_path, command, env = self._prepare(row)
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
            self._give_up_start(row, exc, claimed)
            return
        for fd in (write_fd, spare_fd, gate_r):
            os.close(fd)
        worker = Worker(pid=proc.pid, pid_start=pid_start(proc.pid), log_path=str(log_path),
                        prompt_path=str(prompt))
        try:
            result = self._claim(row, worker) if claimed is None else \
                self._dispatch_claimed(row, claimed, worker)
        except BaseException:
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            raise
        if not result.ok:  # another holder got there first: the gated worker just exits
            self.contended = True
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            fifo.unlink(missing_ok=True)
            return
        timeout = self._timeout(row.id)
        running = Running(
            task_id=row.id, attempt=row.attempt, max_attempts=row.max_attempts,
            attempt_id=result.attempt_id, pid=proc.pid, pid_start=worker.pid_start,
            deadline=time.time() + timeout, timeout=timeout, proc=proc, fd=read_fd,
            log=BoundedLog(log_path, self.opts.log_limit), log_path=str(log_path), fifo=fifo,
        )
        self.running[row.id] = running
        self.selector.register(read_fd, selectors.EVENT_READ, row.id)
        self._watch_exit(running)
        # Bounded before it may run: were this runner killed with -9 now, the watchdog still
        # stops the worker by its time limit, before its lease runs out (dispatch_kit.watchdog).
        self.watchdog.watch(proc.pid, worker.pid_start, timeout + GRACE)
        # Open the gate only now: a Ctrl-C at any earlier moment finds the worker in
        # self.running, so it is stopped and its claim given back, never left working.
        os.write(gate_w, b"go\n")
        os.close(gate_w)
        self.progress.emit("dispatched", row.id, f"dispatched {row.id} (attempt {row.attempt}/"
                           f"{row.max_attempts}, pid {proc.pid})", attempt=row.attempt,
                           pid=proc.pid, log=str(log_path))

    def _dispatch_claimed(self, row: TaskRow, claimed: ClaimResult,
                          worker: Worker) -> ClaimResult:
        """Record the worker of a task claimed before it started (see ``_start_next``)."""
        self.ledger.mark_dispatched(
            self.mission, row.id, self.holder, pid=worker.pid, pid_start=worker.pid_start,
            lease=self._lease(row.id), log_path=worker.log_path,
            prompt_path=worker.prompt_path, fetch=False,
        )
        return claimed

    def _give_up_start(self, row: TaskRow, exc: Exception,
                       claimed: ClaimResult | None = None) -> None:
        """The worker could not even start (bad template, cwd not creatable): a failed attempt,
        so that an error that repeats ends in a failed task rather than a loop."""
        result = self._claim(row) if claimed is None else claimed
        if not result.ok:
            return
        message = f"the runner could not start the worker: {exc}"
        self.progress.emit("error", row.id, f"error {row.id}: {message}", error=str(exc))
        record = self.ledger.record(self.mission, row.id, failing_entry(row.id, message),
                                    expect_attempt=result.attempt_id, actor=self.holder)
        emit_record(self.progress, record)
