"""The in-memory shape of a plan, shared by the validator, checker, renderer, ledger and runner.

Loading and validation live in :mod:`dispatch_kit.plan`; everything downstream
works on these frozen objects, so a plan that got this far is known good.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CriterionKind = Literal["shell", "file_exists", "contains", "min_bytes", "run"]
TaskType = Literal["coding", "research", "review"]

DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_TASKS = 6
MIN_TASKS = 2


@dataclass(frozen=True)
class Criterion:
    """One exit criterion: a shell command, or a structured check that needs no shell."""

    kind: CriterionKind
    shell: str | None = None
    path: str | None = None
    text: str | None = None
    regex: str | None = None
    min_bytes: int | None = None
    argv: tuple[str, ...] = ()
    timeout: float | None = None
    line: int | None = None

    def display(self) -> str:
        """The criterion as a shell command a worker can paste to verify itself."""
        q = shlex.quote
        if self.kind == "shell":
            return self.shell or ""
        if self.kind == "file_exists":
            return f"test -f {q(self.path or '')}"
        if self.kind == "contains" and self.regex is not None:
            return f"grep -qE -- {q(self.regex)} {q(self.path or '')}"
        if self.kind == "contains":
            return f"grep -qF -- {q(self.text or '')} {q(self.path or '')}"
        if self.kind == "min_bytes":
            return f"test \"$(wc -c < {q(self.path or '')})\" -ge {self.min_bytes}"
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    type: TaskType
    cwd: str
    description: str = ""
    depends_on: tuple[str, ...] = ()
    exit_criteria: tuple[Criterion, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    line: int | None = None
    # ``x-*`` fields the plan author added for their own tools; carried, never interpreted.
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Plan:
    goal: str
    workspace: Path
    tasks: tuple[Task, ...]
    path: str = "<plan>"
    allow_commits: bool = False
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    extra: dict = field(default_factory=dict)

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def task_dir(self, task: Task) -> Path:
        """The task's working directory, absolute."""
        return (self.workspace / task.cwd).resolve()

    def order(self) -> list[Task]:
        """Tasks in dependency order, ties kept in plan order (a validated plan has no cycles).

        Level by level: each round takes every task whose dependencies all came
        in earlier rounds, in plan order. Counting unmet dependencies keeps it
        linear in tasks plus edges (a 1,000-task chain took most of a second
        when every round rescanned the pending list). Should a cycle remain,
        the first pending task in plan order is released so the rest still
        comes out in a stable order.
        """
        unmet = [len(task.depends_on) for task in self.tasks]
        waiting_on: dict[str, list[int]] = {}
        for i, task in enumerate(self.tasks):
            for dep in task.depends_on:
                waiting_on.setdefault(dep, []).append(i)
        placed = [False] * len(self.tasks)
        ordered: list[Task] = []
        level = [i for i, count in enumerate(unmet) if count == 0]
        while len(ordered) < len(self.tasks):
            if not level:  # a cycle (or an unknown dependency): release the first pending task
                level = [placed.index(False)]
            following: list[int] = []
            for i in level:
                placed[i] = True
                ordered.append(self.tasks[i])
            for i in level:
                for j in waiting_on.get(self.tasks[i].id, ()):
                    unmet[j] -= 1
                    if unmet[j] == 0 and not placed[j]:
                        following.append(j)
            level = sorted(set(following))
        return ordered
