"""What a worker is given: its prompt, its command line and its environment.

Pure functions of the plan and the ledger row, so the loop can render the next prompts
ahead of time while workers run.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from dispatch_kit.check.env import EnvOverrides, apply, filled
from dispatch_kit.errors import InputError
from dispatch_kit.ledger import TaskRow
from dispatch_kit.plan.model import Plan, Task


def build_prompt(plan: Plan, row: TaskRow, task: Task | None = None,
                 base: Path | None = None, *, mission: str | None = None,
                 ledger: Path | str | None = None) -> str:
    """Worker prompt, plus the retry addendum (with the last failure) from attempt 2 on.

    Paths in the prompt are shown relative to ``base``, the task's own folder,
    because that is where the worker starts. ``mission`` and ``ledger`` are where the
    attempt was claimed, for the dispatch line (by default the plan's own).
    """
    from dispatch_kit.render.templates import render_template, retry_vars, worker_vars

    task = task or plan.task(row.id)
    base = base or plan.task_dir(task)
    values = worker_vars(plan, task, base=base, attempt=row.attempt, mission=mission,
                         ledger=ledger)
    prompt = render_template("worker", values)
    if row.attempt <= 1:
        return prompt
    retry = row.attempt - 1
    entry = row.check_entry() or {}
    note = entry.get("note") if isinstance(entry, dict) else None
    timed_out = bool(entry.get("worker_timed_out")) if isinstance(entry, dict) else False
    try:
        addendum = render_template("retry", retry_vars(
            plan, task, retry, entry, base=base, worker_outcome=note, worker_timed_out=timed_out,
            worker=values,  # the same variables, resolved once for both templates
        ))
    except InputError:
        addendum = (
            f"## Previous attempt failed (attempt {retry}/{task.max_retries + 1})\n"
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
    """The environment every worker of this mission shares (computed once per run).

    The caller's, with the gaps a cron job leaves (no locale, no HOME) filled the
    way the checker fills them for criteria (:func:`dispatch_kit.check.env.filled`).
    Not the checker's bytecode guard: see that module for why.
    """
    env = filled()
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
               prompt: Path, task_env: EnvOverrides = ()) -> dict[str, str]:
    """One attempt's environment: the mission's, the task's ``env``, then the runner's own."""
    env = apply(dict(base), task_env)
    env.update(
        DISPATCH_KIT_PROMPT_FILE=str(prompt),
        DISPATCH_KIT_TASK=task_id,
        DISPATCH_KIT_ATTEMPT=str(attempt),
        DISPATCH_KIT_MAX_ATTEMPTS=str(max_attempts),
    )
    return env
