"""Checking an attempt's exit criteria and turning the result into a verdict entry.

Shared by the loop (a worker it watched exited) and by ``Ledger.sweep`` (a worker nobody
watched is gone), so both record the same evidence for the retry prompt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from dispatch_kit.durations import format_duration
from dispatch_kit.errors import InputError
from dispatch_kit.ledger import ClaimRow, Mission
from dispatch_kit.plan.model import Plan, Task
from dispatch_kit.runner.files import (
    exit_file_for,
    lock_file_for,
    pipe_path,
    read_exit_file,
    worker_file_for,
)

# How long past its time limit a detached worker whose supervisor died may run
# before a run or a sweep stops it; and how long stopping it may take.
DETACHED_GRACE = 5.0
STOP_WAIT = 10.0


def detached_alive(claim: ClaimRow) -> bool:
    """Whether a detached attempt may still be running: its worker holds the lock file.

    Judged by the worker, never by the supervisor the ledger recorded (the
    supervisor may have been killed with -9 while its worker runs on).
    """
    from dispatch_kit.procs.groups import lock_held

    return bool(claim.log_path) and lock_held(lock_file_for(claim.log_path or ""))


def detached_overdue(claim: ClaimRow, now: float) -> bool:
    started = claim.dispatched_at or claim.claimed_at
    return now > started + (claim.timeout or 0.0) + DETACHED_GRACE


def stop_detached(claim: ClaimRow) -> bool:
    """Kill a detached attempt's worker group and whatever holds its lock; True once the
    lock is free (so no retry can overlap it)."""
    import os
    import signal
    import time

    from dispatch_kit.procs.groups import holders, kill_group, lock_held, pid_alive

    lock = lock_file_for(claim.log_path or "")
    worker = read_exit_file(worker_file_for(claim.log_path or "")) or {}
    pid = worker.get("pid")
    deadline = time.monotonic() + STOP_WAIT
    while lock_held(lock):
        if isinstance(pid, int) and 0 < pid < 1 << 31 and pid_alive(pid, worker.get("start")):
            kill_group(pid, grace=0.5)
        for holder in holders(lock):
            try:
                os.kill(holder, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


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
            from dispatch_kit.plan.load import load_plan

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
        from dispatch_kit.check.criteria import check_plan

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
        if detached_alive(claim) and not stop_detached(claim):
            return failing_entry(claim.task_id, "the earlier attempt could not be stopped"), {
                "note": f"{reason}; its worker still holds {lock_file_for(claim.log_path or '')}"}
        if claim.log_path:
            pipe_path(claim.log_path, claim.holder_pid or 0).unlink(missing_ok=True)
            status = read_exit_file(exit_file_for(claim.log_path))
            if status:
                exit_code, timed_out = status.get("exit_code"), bool(status.get("timed_out"))
        entry = self.check(claim.task_id)
        note = worker_note(exit_code, timed_out, claim.timeout)
        note = f"{reason}. {note}" if note else f"{reason}."
        return entry, {"note": note, "exit_code": exit_code, "timed_out": timed_out}
