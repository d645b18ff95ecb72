"""Getting an attempt ready to start: its folder, prompt file, log path, command and env.

Shared by the foreground start and by ``--detach``, which start workers differently but
lay out an attempt the same way. Prompts are rendered ahead while workers run, so a
start right after a worker exits does not wait for the template.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dispatch_kit.check.confine import Escape, realpath_or_escape, task_folder_stat
from dispatch_kit.errors import InputError
from dispatch_kit.ledger import TaskRow
from dispatch_kit.runner.events import Events
from dispatch_kit.runner.files import write_text
from dispatch_kit.runner.prompts import build_prompt, worker_command, worker_env
from dispatch_kit.runner.state import RunState


class Preparer:
    """Lays out each attempt's files under ``runs`` and keeps the prompts rendered ahead.

    ``base_env`` is the environment every worker of the mission shares
    (:func:`~dispatch_kit.runner.prompts.mission_env`); ``events`` tells whether the loop
    has something more urgent to do than render the next prompt.
    """

    def __init__(self, state: RunState, events: Events, *, base_env: dict[str, str],
                 runs: Path) -> None:
        self.state = state
        self.events = events
        self.base_env = base_env
        self.runs = runs
        self._runs_made = False
        self._prompts: dict[tuple[str, int], str] = {}  # rendered ahead, while workers run

    def prepare(self, row: TaskRow) -> tuple[Path, Path, Path, str, dict[str, str]]:
        """The attempt's folder, prompt file (written), log path, command and environment."""
        state = self.state
        task = state.tasks[row.id]
        cwd = self._task_folder(state.plan.workspace, task.cwd)
        folder = self.runs
        if not self._runs_made:
            folder.mkdir(parents=True, exist_ok=True)
            self._runs_made = True
        prompt = folder / f"{row.id}.attempt-{row.attempt}.prompt.md"
        text = self._prompts.pop((row.id, row.attempt), None)
        write_text(prompt, text if text is not None else self._render(row, cwd))
        log = folder / f"{row.id}.attempt-{row.attempt}.log"
        command = worker_command(state.options.worker, prompt, row.id, row.attempt, cwd)
        env = worker_env(self.base_env, row.id, row.attempt, row.max_attempts, prompt, task.env)
        if state.trace is not None:  # the worker gets its attempt's TRACEPARENT
            state.trace.apply(env, row.id)
        return cwd, prompt, log, command, env

    def _render(self, row: TaskRow, cwd: Path) -> str:
        """The attempt's prompt; its dispatch line names this run's mission and ledger."""
        state = self.state
        return build_prompt(state.collector.task_plan(row.id), row, state.tasks[row.id], cwd,
                            mission=state.mission, ledger=state.ledger.location)

    @staticmethod
    def _task_folder(workspace: Path, cwd: str) -> Path:
        """The task's folder, resolved now and created if missing; InputError if it escapes.

        Resolved now, not when the run began: an earlier worker may have swapped a folder
        for a symlink out of the workspace (dispatch_kit.check.confine). Resolved once: a
        missing folder is created at the resolved path (whose existing part has no symlink
        left, the rest is made here as plain folders), so it resolves to that same path;
        what a process racing in between could still change, it could as well between any
        check and the worker's ``chdir`` (the module doc of dispatch_kit.check.confine).
        """
        try:
            real, info = task_folder_stat(workspace, cwd, realpath_or_escape(workspace))
        except Escape as exc:
            raise InputError(f"refused to start the worker: {exc}") from None
        if isinstance(info, OSError) or not stat.S_ISDIR(info.st_mode):
            try:
                os.mkdir(real)
            except FileNotFoundError:  # its parent is missing too
                os.makedirs(real, exist_ok=True)
            except FileExistsError:  # a file there is an OSError: the attempt fails to start
                if not os.path.isdir(real):
                    raise
        return Path(real)

    def prefetch(self) -> None:
        """Render the prompts of the next ready tasks while workers run, off the critical path.

        Only when no output is waiting to be read, and never more than WIP
        prompts ahead; a prompt rendered for an attempt that never starts is
        simply dropped.
        """
        state = self.state
        if len(self._prompts) >= state.options.wip or not state.running or state.contended:
            return  # (runners sharing a mission: the next ready task is likely another's)
        if self.events.select(0):
            return  # something to handle first
        for row in state.ledger.next_ready(state.mission, limit=state.options.wip):
            key = (row.id, row.attempt)
            if key in self._prompts:
                continue
            try:
                self._prompts[key] = self._render(row, state.task_dirs[row.id])
            except InputError:
                return  # it will fail again, visibly, when the task starts
            return  # one per idle moment: the loop comes back here while workers run
