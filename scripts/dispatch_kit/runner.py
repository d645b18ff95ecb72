"""The workspace-dispatch loop without a model in the middle: ``dispatch-kit run``.

For cron jobs and CI the orchestrator can be a program. The runner takes the
next ready task from the ledger, claims it, renders the worker prompt (plus the
retry addendum on a retry), starts the worker command in the task's folder in
its own process group, stops it at its time limit, checks the exit criteria
with the checker and records the verdict. Everything it knows lives in the
ledger, so a runner killed at any moment can be started again: verified tasks
stay verified, workers it left running are adopted or collected.

``--detach`` is the fire-and-forget executor: claim up to N tasks, start each
worker under a small supervisor (time limit, bounded log, exit status file),
and exit at once; a later run or ``ledger sweep`` collects the results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dispatch_kit.durations import format_duration
from dispatch_kit.errors import InputError
from dispatch_kit.ledger import (
    ClaimResult,
    ClaimRow,
    Ledger,
    Mission,
    RecordResult,
    TaskRow,
    Worker,
    first_line,
    iso,
)
from dispatch_kit.plan_model import Plan, Task
from dispatch_kit.procs import BoundedLog, hostname, kill_group, pid_alive, pid_start

LEASE_MARGIN = 120.0  # beyond the worker's time limit: room for the criteria check
RECOVER_EVERY = 2.0  # seconds between sweeps of other holders' claims
LOG_LIMIT = 1 << 20
PLACEHOLDERS = ("{prompt_file}", "{task}", "{attempt}", "{cwd}")
# Run by /bin/sh as the worker's process-group leader: wait for the runner's go
# (EOF instead means the runner died before recording this worker: do nothing),
# then read the prompt on stdin and run the worker command in this same shell.
GATE = 'IFS= read -r _dk_go || exit 97; exec <"$1"; _dk_cmd=$2; set --; eval "$_dk_cmd"'


# --------------------------------------------------------------------------- options, events


@dataclass
class RunOptions:
    worker: str
    wip: int = 1
    timeout: float | None = None  # per attempt; default: the task's timeout from the plan
    holder: str | None = None
    lease: float | None = None  # default: timeout + LEASE_MARGIN
    log_limit: int = LOG_LIMIT
    jobs: int | None = None  # criteria run in parallel per check
    output: str = "text"  # text | jsonl | quiet (progress stream)
    detach: bool = False
    max_dispatch: int = 1


class Progress:
    """One line per event with the elapsed time; JSON lines for machines; nothing when quiet."""

    def __init__(self, mode: str = "text", stream: IO[str] | None = None) -> None:
        self.mode = mode
        self.stream = stream
        self.t0 = time.monotonic()
        self.lines: list[dict] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def emit(self, event: str, task: str | None, message: str, **fields: Any) -> None:
        record = {"t": round(self.elapsed(), 3), "event": event, "task": task, **fields}
        self.lines.append(record)
        if self.mode == "quiet":
            return
        if self.mode == "jsonl":
            out = self.stream or sys.stdout
            out.write(json.dumps(record, default=str) + "\n")
        else:
            out = self.stream or sys.stderr
            out.write(f"[{format_duration(self.elapsed()):>7}] {message}\n")
        out.flush()


# --------------------------------------------------------------------------- collecting results


def runs_dir(ledger_path: Path, mission: str) -> Path:
    """Where prompts and logs go: ``runs/MISSION/TASK.attempt-N.{prompt.md,log}`` beside the
    ledger (one flat folder: every file costs the filesystem less than a folder per task)."""
    return ledger_path.parent / "runs" / mission


def exit_file_for(log_path: str | Path) -> Path:
    return Path(log_path).with_suffix(".exit.json")


def pipe_path(log_path: str | Path, holder_pid: int) -> Path:
    """The named pipe a worker writes its output to, named after the runner reading it (so
    two runners racing for one task never share a pipe; an adopter renames it to its pid)."""
    return Path(log_path).with_suffix(f".{holder_pid}.pipe")


def worker_note(exit_code: int | None, timed_out: bool, timeout: float | None) -> str | None:
    """What the previous worker did, for the retry prompt (None when it exited cleanly)."""
    if timed_out:
        return f"The previous worker was stopped at its time limit ({format_duration(timeout)})."
    if exit_code is None or exit_code == 0:
        return None
    if exit_code < 0:
        return f"The previous worker was killed by signal {-exit_code}."
    return f"The previous worker exited with code {exit_code}."


def failing_entry(task_id: str, message: str) -> dict:
    """A check entry for an attempt whose criteria could not be checked at all."""
    return {
        "id": task_id,
        "passed": False,
        "criteria": [
            {"index": 0, "criterion": "(exit criteria)", "kind": "shell", "verdict": "error",
             "exit_code": None, "duration": 0.0, "stdout_tail": "", "stderr_tail": "",
             "message": message}
        ],
    }


@dataclass(frozen=True)
class ResolvedPlan(Plan):
    """A plan that resolves each task folder once.

    ``Plan.task_dir`` resolves symlinks on every call (an lstat per path
    component), and the checker and the renderer ask for it several times per
    task; over a long mission that is a large share of the runner's cost.
    """

    resolved: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, plan: Plan) -> ResolvedPlan:
        if isinstance(plan, cls):
            return plan
        return cls(**{f.name: getattr(plan, f.name) for f in dataclasses.fields(Plan)})

    def task_dir(self, task: Task) -> Path:
        found = self.resolved.get((task.id, task.cwd))
        if found is None:
            found = self.resolved[(task.id, task.cwd)] = super().task_dir(task)
        return found


class Collector:
    """Check the criteria of one task (loading the mission's plan once, when first needed)."""

    def __init__(self, mission: Mission, plan: Plan | None = None, jobs: int | None = None) -> None:
        self.mission = mission
        self._plan = ResolvedPlan.of(plan) if plan is not None else None
        self._error: str | None = None
        self._task_plans: dict[str, Plan] = {}
        self.jobs = jobs

    def plan(self) -> Plan | None:
        if self._plan is None and self._error is None:
            from dispatch_kit.plan import load_plan

            try:
                self._plan = ResolvedPlan.of(
                    load_plan(self.mission.plan_path, max_tasks=self.mission.max_tasks))
            except InputError as exc:
                self._error = f"cannot load the plan to check the criteria: {exc}"
        return self._plan

    def task_plan(self, task_id: str) -> Plan:
        """The plan cut down to one task and the tasks it depends on.

        The checker and the renderer look tasks up by scanning the plan; on a
        plan of a thousand tasks that scan, repeated for every task, is most of
        their cost. Same goal, workspace and path, so what they produce is the same.
        """
        found = self._task_plans.get(task_id)
        if found is None:
            plan = self.plan()
            assert plan is not None
            task = plan.task(task_id)
            keep = {task_id, *task.depends_on}
            found = dataclasses.replace(plan, tasks=tuple(t for t in plan.tasks if t.id in keep))
            self._task_plans[task_id] = found
        return found

    def check(self, task_id: str) -> dict:
        from dispatch_kit.check import check_plan

        plan = self.plan()
        if plan is None:
            return failing_entry(task_id, self._error or "no plan")
        try:
            document = check_plan(self.task_plan(task_id), [task_id], jobs=self.jobs)
        except InputError as exc:
            return failing_entry(task_id, f"the check could not run: {exc}")
        for entry in document.get("tasks", []):
            if entry.get("id") == task_id:
                return entry
        return failing_entry(task_id, "the checker returned no result for this task")

    def collect(self, claim: ClaimRow, reason: str) -> tuple[dict, dict]:
        """For ``Ledger.sweep``: the verdict on an attempt whose worker is gone."""
        exit_code, timed_out = None, False
        if claim.log_path:
            pipe_path(claim.log_path, claim.holder_pid or 0).unlink(missing_ok=True)
            status = read_exit_file(exit_file_for(claim.log_path))
            if status:
                exit_code, timed_out = status.get("exit_code"), bool(status.get("timed_out"))
        entry = self.check(claim.task_id)
        note = worker_note(exit_code, timed_out, claim.timeout)
        note = f"{reason}. {note}" if note else f"{reason}."
        return entry, {"note": note, "exit_code": exit_code, "timed_out": timed_out}


def read_exit_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- prompts


def build_prompt(plan: Plan, row: TaskRow, task: Task | None = None,
                 base: Path | None = None) -> str:
    """Worker prompt, plus the retry addendum (with the last failure) from attempt 2 on.

    Paths in the prompt are shown relative to ``base``, the task's own folder,
    because that is where the worker starts.
    """
    from dispatch_kit.render import render_template, retry_vars, worker_vars

    task = task or plan.task(row.id)
    base = base or plan.task_dir(task)
    prompt = render_template("worker", worker_vars(plan, task, base=base))
    if row.attempt <= 1:
        return prompt
    retry = row.attempt - 1
    entry = row.check_entry() or {}
    note = entry.get("note") if isinstance(entry, dict) else None
    timed_out = bool(entry.get("worker_timed_out")) if isinstance(entry, dict) else False
    try:
        values = retry_vars(
            plan, task, retry, entry, base=base, worker_outcome=note, worker_timed_out=timed_out
        )
        addendum = render_template("retry", values)
    except InputError:
        addendum = (
            f"## Previous attempt failed (attempt {retry}/{task.max_retries})\n"
            f"Error: {row.last_error or 'the exit criteria did not pass'}\n\n"
            "Fix this specific issue, then run every exit criterion again.\n"
        )
    return prompt.rstrip("\n") + "\n\n" + addendum


def worker_command(template: str, prompt_file: Path, task_id: str, attempt: int, cwd: Path) -> str:
    """The worker command with its placeholders filled in, each shell-quoted."""
    values = {
        "{prompt_file}": str(prompt_file),
        "{task}": task_id,
        "{attempt}": str(attempt),
        "{cwd}": str(cwd),
    }
    command = template
    for key, value in values.items():
        command = command.replace(key, shlex.quote(value))
    return command


def mission_env(plan: Plan, mission: str) -> dict[str, str]:
    """The environment every worker of this mission shares (computed once per run)."""
    env = dict(os.environ)
    env.update(
        DISPATCH_KIT_PLAN=str(Path(plan.path).resolve()),
        DISPATCH_KIT_WORKSPACE=str(Path(plan.workspace).resolve()),
        DISPATCH_KIT_MISSION=mission,
        # The worker runs in its task's folder; this is where `run` was started,
        # so a command can name its script relative to that: "$DISPATCH_KIT_ORIGIN/w.py".
        DISPATCH_KIT_ORIGIN=os.getcwd(),
    )
    return env


def worker_env(base: dict[str, str], task_id: str, attempt: int, max_attempts: int,
               prompt: Path) -> dict[str, str]:
    env = dict(base)
    env.update(
        DISPATCH_KIT_PROMPT_FILE=str(prompt),
        DISPATCH_KIT_TASK=task_id,
        DISPATCH_KIT_ATTEMPT=str(attempt),
        DISPATCH_KIT_MAX_ATTEMPTS=str(max_attempts),
    )
    return env


# --------------------------------------------------------------------------- the runner


@dataclass
class Running:
    """A worker in flight: started by this runner (``proc``) or adopted from a dead one."""

    task_id: str
    attempt: int
    max_attempts: int
    attempt_id: int
    pid: int
    pid_start: str | None
    deadline: float
    timeout: float
    proc: subprocess.Popen | None = None
    fd: int | None = None
    log: BoundedLog | None = None
    log_path: str | None = None
    fifo: Path | None = None
    pidfd: int | None = None  # readable when the worker exits (Linux); else we poll
    timed_out: bool = False
    exit_code: int | None = None
    started: float = field(default_factory=time.time)


class Runner:
    def __init__(self, plan: Plan, ledger: Ledger, mission: str, options: RunOptions,
                 progress: Progress | None = None) -> None:
        plan = ResolvedPlan.of(plan)
        self.plan = plan
        self.ledger = ledger
        self.mission = mission
        self.opts = options
        self.progress = progress or Progress()
        self.holder = options.holder or f"run:{hostname()}:{os.getpid()}"
        self.me_start = pid_start(os.getpid())
        self.collector = Collector(ledger.mission(mission), plan, jobs=options.jobs)
        self.running: dict[str, Running] = {}
        self.checking: dict[str, tuple[Future, Running]] = {}
        self.selector = selectors.DefaultSelector()
        self.pool: ThreadPoolExecutor | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._last_recover = 0.0
        self.base_env = mission_env(plan, mission)
        self._prompts: dict[tuple[str, int], str] = {}  # rendered ahead, while workers run
        self.runs = runs_dir(ledger.path, mission)
        self._runs_made = False
        self.tasks = {task.id: task for task in plan.tasks}
        self.task_dirs = {task.id: plan.task_dir(task) for task in plan.tasks}

    # -- helpers ---------------------------------------------------------------

    def _timeout(self, task_id: str) -> float:
        return self.opts.timeout or float(self.tasks[task_id].timeout)

    def _lease(self, task_id: str) -> float:
        return self.opts.lease or self._timeout(task_id) + LEASE_MARGIN

    def _emit_record(self, result: RecordResult, took: float | None = None) -> None:
        tid = result.task_id
        if result.outcome == "verified":
            when = f" in {format_duration(took)}" if took is not None else ""
            self.progress.emit("verified", tid, f"verified {tid} (attempt {result.attempt}/"
                               f"{result.max_attempts}){when}", attempt=result.attempt)
        elif result.outcome == "retry":
            n, total = result.attempt, result.max_attempts - 1
            self.progress.emit("retrying", tid, f"retrying {tid} {n}/{total}: "
                               f"{first_line(result.error, 100)}", retry=n, max_retries=total,
                               error=first_line(result.error))
        elif result.outcome == "failed":
            self.progress.emit("failed", tid, f"failed {tid} after {result.attempt} attempts: "
                               f"{first_line(result.error, 100)}", attempts=result.attempt,
                               error=first_line(result.error))
            for dep in result.skipped:
                self.progress.emit("skipped", dep, f"skipped {dep} (depends on {tid})",
                                   because=tid)

    # -- recovery --------------------------------------------------------------

    def recover(self, *, adopt: bool = True) -> None:
        """Deal with claims this runner does not hold: adopt live orphans, sweep stale ones."""
        self._last_recover = time.monotonic()
        now = time.time()
        self.ledger.renew(self.mission, self.holder, {
            **{t: r.deadline + LEASE_MARGIN for t, r in self.running.items()},
            **{t: now + LEASE_MARGIN for t in self.checking},
        })
        if adopt:
            for claim in self.ledger.claims(self.mission):
                if claim.holder == self.holder or claim.task_id in self.running:
                    continue
                if (claim.state == "dispatched" and claim.holder_alive() is False
                        and claim.worker_alive()):
                    self._adopt(claim)
        for action in self.ledger.sweep(
            self.mission, collect=self.collector.collect, actor=self.holder,
            skip=lambda c: c.holder == self.holder,
        ):
            if action.action == "released":
                self.progress.emit("released", action.task_id,
                                   f"released {action.task_id}: {action.reason}",
                                   reason=action.reason)
            elif action.result is not None:
                self.progress.emit("collected", action.task_id,
                                   f"collected {action.task_id}: {action.reason}",
                                   reason=action.reason)
                self._emit_record(action.result)

    def _adopt(self, claim: ClaimRow) -> None:
        reason = f"holder {claim.holder} is gone; worker pid {claim.pid} still running"
        if not self.ledger.adopt(self.mission, claim.task_id, claim.attempt_id, self.holder,
                                 holder_pid=os.getpid(), holder_start=self.me_start,
                                 reason=reason):
            return
        timeout = self._timeout(claim.task_id)
        started = claim.dispatched_at or claim.claimed_at
        task = self.tasks[claim.task_id]
        running = Running(
            task_id=claim.task_id, attempt=claim.attempt, max_attempts=1 + task.max_retries,
            attempt_id=claim.attempt_id, pid=claim.pid or 0, pid_start=claim.pid_start,
            deadline=started + timeout + 5.0, timeout=timeout, log_path=claim.log_path,
            started=started,
        )
        old_fifo = pipe_path(claim.log_path, claim.holder_pid or 0) if claim.log_path else None
        fifo = pipe_path(claim.log_path, os.getpid()) if claim.log_path else None
        if old_fifo is not None and fifo is not None and old_fifo.exists():
            # Reattach to the worker's output: it has been waiting for a reader.
            try:
                os.replace(old_fifo, fifo)
                running.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                running.fd = None
            if running.fd is not None:
                running.fifo = fifo
                running.log = BoundedLog(Path(claim.log_path or ""), self.opts.log_limit,
                                         append=True)
                self.selector.register(running.fd, selectors.EVENT_READ, claim.task_id)
        self.running[claim.task_id] = running
        self._watch_exit(running)
        self.progress.emit("adopted", claim.task_id, f"adopted {claim.task_id} (attempt "
                           f"{claim.attempt}, pid {claim.pid}): {reason}", pid=claim.pid)

    # -- starting workers ------------------------------------------------------

    def _prepare(self, row: TaskRow) -> tuple[Path, Path, Path, str, dict[str, str]]:
        task = self.tasks[row.id]
        cwd = self.task_dirs[row.id]
        cwd.mkdir(parents=True, exist_ok=True)
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
        env = worker_env(self.base_env, row.id, row.attempt, row.max_attempts, prompt)
        return cwd, prompt, log, command, env

    def _claim(self, row: TaskRow, worker: Worker | None = None) -> ClaimResult:
        return self.ledger.claim(
            self.mission, row.id, self.holder, self._lease(row.id), holder_pid=os.getpid(),
            holder_start=self.me_start, worker=worker, expect_attempt=row.attempt,
        )

    def _start(self, row: TaskRow) -> None:
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
            self._give_up_start(row, exc)
            return
        for fd in (write_fd, spare_fd, gate_r):
            os.close(fd)
        worker = Worker(pid=proc.pid, pid_start=pid_start(proc.pid), log_path=str(log_path),
                        prompt_path=str(prompt))
        try:
            result = self._claim(row, worker)
        except BaseException:
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            raise
        if not result.ok:  # another holder got there first: the gated worker just exits
            os.close(gate_w)
            proc.wait()
            os.close(read_fd)
            fifo.unlink(missing_ok=True)
            return
        os.write(gate_w, b"go\n")
        os.close(gate_w)
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
        self.progress.emit("dispatched", row.id, f"dispatched {row.id} (attempt {row.attempt}/"
                           f"{row.max_attempts}, pid {proc.pid})", attempt=row.attempt,
                           pid=proc.pid, log=str(log_path))

    def _give_up_start(self, row: TaskRow, exc: Exception) -> None:
        """The worker could not even start (bad template, cwd not creatable): a failed attempt,
        so that an error that repeats ends in a failed task rather than a loop."""
        result = self._claim(row)
        if not result.ok:
            return
        message = f"the runner could not start the worker: {exc}"
        self.progress.emit("error", row.id, f"error {row.id}: {message}", error=str(exc))
        record = self.ledger.record(self.mission, row.id, failing_entry(row.id, message),
                                    expect_attempt=result.attempt_id, actor=self.holder)
        self._emit_record(record)

    # -- watching workers ------------------------------------------------------

    def _drain(self, running: Running, *, final: bool = False) -> None:
        """Move what the worker printed into its log; on EOF (or ``final``) close the pipe."""
        if running.fd is None:
            return
        while True:
            try:
                data = os.read(running.fd, 65536)
            except BlockingIOError:
                if not final:
                    return
                data = b""  # the worker is gone; whatever still holds the pipe escaped its group
            except OSError:
                data = b""
            if data:
                if running.log is not None:
                    running.log.write(data)
                continue
            self.selector.unregister(running.fd)
            os.close(running.fd)
            running.fd = None
            if running.fifo is not None:
                running.fifo.unlink(missing_ok=True)
            return

    def _reap(self) -> None:
        now = time.time()
        for running in list(self.running.values()):
            if running.proc is not None:
                code = running.proc.poll()
                done = code is not None
            else:
                done, code = not pid_alive(running.pid, running.pid_start), None
            if not done and now >= running.deadline:
                running.timed_out = True
                kill_group(running.pid)
                self.progress.emit("timeout", running.task_id, f"timeout {running.task_id}: "
                                   f"worker stopped after {format_duration(running.timeout)}",
                                   timeout=running.timeout)
                if running.proc is not None:
                    try:
                        code = running.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        code = None
                done = True
            if done:
                self._finish(running, code)

    def _finish(self, running: Running, code: int | None) -> None:
        """The worker is gone: stop leftovers in its group, close its log, check its criteria."""
        try:
            os.killpg(running.pid, signal.SIGKILL)  # background children it left behind
        except (ProcessLookupError, PermissionError):
            pass
        self._drain(running, final=True)
        self._unwatch_exit(running)
        if running.log is not None:
            running.log.close()
        if running.proc is None and running.log_path:
            status = read_exit_file(exit_file_for(running.log_path)) or {}
            code = status.get("exit_code", code)
            running.timed_out = running.timed_out or bool(status.get("timed_out"))
        running.exit_code = code
        del self.running[running.task_id]
        future: Future
        if not self.running and not self.checking:
            # Nothing else in flight whose output or deadline needs watching: check
            # right here and skip the hand-off to a thread.
            future = Future()
            try:
                future.set_result(self.collector.check(running.task_id))
            except Exception as exc:  # noqa: BLE001 - reported as the task's failure
                future.set_exception(exc)
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=max(1, self.opts.wip))
            future = self.pool.submit(self.collector.check, running.task_id)
            future.add_done_callback(lambda _f: self._wake())
        self.checking[running.task_id] = (future, running)

    def _watch_exit(self, running: Running) -> None:
        """Get woken the moment the worker exits, not at the next poll (Linux pidfd)."""
        try:
            running.pidfd = os.pidfd_open(running.pid)
        except (AttributeError, OSError):
            running.pidfd = None
            return
        self.selector.register(running.pidfd, selectors.EVENT_READ, ("exit", running.task_id))

    def _unwatch_exit(self, running: Running) -> None:
        if running.pidfd is not None:
            self.selector.unregister(running.pidfd)
            os.close(running.pidfd)
            running.pidfd = None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def _record_checks(self) -> None:
        for task_id, (future, running) in list(self.checking.items()):
            if not future.done():
                continue
            del self.checking[task_id]
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a checker crash must not kill the loop
                entry = failing_entry(task_id, f"the checker crashed: {exc!r}")
            note = worker_note(running.exit_code, running.timed_out, running.timeout)
            if note and not entry.get("passed"):
                entry = dict(entry, note=note, worker_timed_out=running.timed_out)
            result = self.ledger.record(
                self.mission, task_id, entry, note=note if not entry.get("passed") else None,
                exit_code=running.exit_code, timed_out=running.timed_out,
                expect_attempt=running.attempt_id, actor=self.holder,
            )
            self._emit_record(result, time.time() - running.started)

    def _prefetch(self) -> None:
        """Render the prompts of the next ready tasks while workers run, off the critical path.

        Only when no output is waiting to be read, and never more than WIP
        prompts ahead; a prompt rendered for an attempt that never starts is
        simply dropped.
        """
        if len(self._prompts) >= self.opts.wip or not self.running:
            return
        if self.selector.select(0):
            return  # something to handle first
        for row in self.ledger.next_ready(self.mission, limit=self.opts.wip):
            key = (row.id, row.attempt)
            if key in self._prompts:
                continue
            try:
                self._prompts[key] = build_prompt(self.collector.task_plan(row.id), row,
                                                  self.tasks[row.id],
                                                  self.task_dirs[row.id])
            except InputError:
                return  # it will fail again, visibly, when the task starts
            return  # one per idle moment: the loop comes back here while workers run

    def _wait(self) -> None:
        """Sleep until output, a worker exit, a finished check or the next deadline."""
        timeout = 1.0
        if any(r.pidfd is None for r in self.running.values()):
            timeout = 0.02  # no exit notification for some worker: poll
        if self.running:
            soonest = min(r.deadline for r in self.running.values()) - time.time()
            timeout = max(0.0, min(timeout, soonest))
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            if isinstance(key.data, tuple):
                continue  # a worker exited: the next _reap collects it
            running = self.running.get(key.data)
            if running is not None:
                self._drain(running)

    # -- the loop --------------------------------------------------------------

    def run(self) -> dict:
        """Run the mission to the end; return the ledger's status document."""
        self.recover()
        try:
            while True:
                self._reap()
                self._record_checks()
                if time.monotonic() - self._last_recover > RECOVER_EVERY:
                    self.recover()
                slots = self.opts.wip - len(self.running) - len(self.checking)
                if slots > 0:
                    for row in self.ledger.next_ready(self.mission, limit=slots):
                        self._start(row)
                if not self.running and not self.checking:
                    if self.ledger.in_flight(self.mission):
                        time.sleep(0.2)  # other holders are working; sweep them when stale
                        self.recover()
                        continue
                    if not self.ledger.next_ready(self.mission, limit=1):
                        break
                    continue
                self._prefetch()
                self._wait()
        except BaseException:
            self._abort("runner interrupted")
            raise
        finally:
            self.close()
        return self.ledger.status(self.mission)

    def _abort(self, reason: str) -> None:
        """Stop every worker this runner started; give their claims back unspent."""
        for running in list(self.running.values()):
            kill_group(running.pid, grace=0.5)
            self._drain(running, final=True)
            self._unwatch_exit(running)
            if running.log is not None:
                running.log.close()
            self.ledger.release(self.mission, running.task_id, reason=reason,
                                expect_attempt=running.attempt_id, outcome="interrupted",
                                actor=self.holder)
            self.progress.emit("interrupted", running.task_id,
                               f"interrupted {running.task_id}: worker stopped, claim released")
        self.running.clear()
        for task_id, (future, running) in list(self.checking.items()):
            future.cancel()
            self.ledger.release(self.mission, task_id, reason=reason,
                                expect_attempt=running.attempt_id, outcome="interrupted",
                                actor=self.holder)
        self.checking.clear()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.selector.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- fire and forget -------------------------------------------------------

    def detach(self, wip: int | None = None) -> list[dict]:
        """Collect finished detached work, claim up to ``max_dispatch`` tasks, start their
        workers under a supervisor in a new session, and return at once."""
        self.recover(adopt=False)
        slots = self.opts.max_dispatch
        if wip is not None:
            slots = min(slots, wip - self.ledger.in_flight(self.mission))
        started: list[dict] = []
        if slots <= 0:
            return started
        for row in self.ledger.next_ready(self.mission, limit=slots):
            try:
                item = self._spawn_detached(row)
            except (InputError, OSError) as exc:
                self._give_up_start(row, exc)
                continue
            if item is not None:
                started.append(item)
        return started

    def _spawn_detached(self, row: TaskRow) -> dict | None:
        """Start the supervisor held at its gate, claim with its pid, then let it go."""
        cwd, prompt, log_path, command, env = self._prepare(row)
        timeout = self._timeout(row.id)
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        exit_file = exit_file_for(log_path)
        exit_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "dispatch_kit.supervise", "--timeout", str(timeout),
            "--log", str(log_path), "--log-limit", str(self.opts.log_limit),
            "--exit-file", str(exit_file), "--prompt", str(prompt), "--gate",
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
            result = self._claim(row, Worker(pid=proc.pid, pid_start=pid_start(proc.pid),
                                             log_path=str(log_path), prompt_path=str(prompt)))
            if result.ok:
                os.write(gate_w, b"go\n")
        finally:
            os.close(gate_w)
        if not result.ok:
            proc.wait()
            return None
        self.progress.emit("dispatched", row.id, f"dispatched {row.id} (attempt {row.attempt}/"
                           f"{row.max_attempts}, pid {proc.pid}, detached)",
                           attempt=row.attempt, pid=proc.pid, log=str(log_path))
        return {"id": row.id, "attempt": row.attempt, "max_attempts": row.max_attempts,
                "pid": proc.pid, "lease_expires": iso(result.lease_expires),
                "log": str(log_path)}


# --------------------------------------------------------------------------- entry point


def open_mission(plan: Plan, *, db: str | None, mission: str | None, max_tasks: int,
                 force: bool = False, reset: bool = False) -> tuple[Ledger, str]:
    """Open (creating if needed) the plan's ledger and load the plan into it."""
    from dispatch_kit.ledger import default_db_for

    path = Path(db) if db else default_db_for(plan)
    ledger = Ledger.open(path, create=True)
    try:
        result = ledger.init_mission(plan, mission_id=mission, max_tasks=max_tasks, force=force)
        if reset:
            ledger.reset_mission(result.mission)
    except BaseException:
        ledger.close()
        raise
    return ledger, result.mission


def install_term_handler() -> Callable[[], None]:
    """Turn SIGTERM (a cron job's hard timeout) into the same clean stop as Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
