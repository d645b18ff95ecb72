"""The in-memory shape of a plan, shared by the validator, checker, renderer, ledger and runner.

Loading and validation live in :mod:`dispatch_kit.plan.load`; everything downstream
works on these frozen objects, so a plan that got this far is known good.
"""

from __future__ import annotations

import re
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
# Variables the runner sets for each worker; a plan's env may not name them.
RESERVED_ENV_PREFIX = "DISPATCH_KIT_"


# The checker's contains tests, as commands (check.py: bytes for text; UTF-8 with
# replacement and re.MULTILINE for a regex).
_PY_REGEX = (
    "import re,sys;sys.exit(not re.search(sys.argv[1],open(sys.argv[2],encoding='utf-8',"
    "errors='replace',newline='').read(),re.M))"
)
_PY_TEXT = "import sys;sys.exit(sys.argv[1].encode() not in open(sys.argv[2],'rb').read())"
# Escapes of punctuation mean the character itself in both dialects.
_PUNCTUATION = set(".^$*+?()[]{}|\\/-")


def _grep_reads_as_python(regex: str) -> bool:
    """Whether ``grep -E`` (line by line) and Python's ``re`` (re.MULTILINE) agree on ``regex``.

    Conservative: any construct the two dialects read differently, or that
    only one has, sends the caller to the exact Python spelling: escapes of
    letters and digits (``\\d``, ``\\b``, back-references), ``(?`` groups,
    lazy quantifiers, any ``{`` that is not a plain small ``{m}``/``{m,n}``,
    a backslash or ``[`` inside brackets, negated brackets and ``.`` (Python's
    match line breaks or undecodable bytes), non-ASCII or unprintable
    characters, and any regex that matches the empty text (grep sees no line
    in an empty file).
    """
    if "(?" in regex or not regex.isascii() or not regex.isprintable():
        return False  # extensions; and bytes against characters, which depends on the locale
    try:
        if re.search(regex, "", re.MULTILINE) is not None:
            return False  # grep finds no line in an empty file, nor after its last newline
    except re.error:
        return False
    i, length = 0, len(regex)
    while i < length:
        char = regex[i]
        if char == "\\":
            if i + 1 >= length or regex[i + 1] not in _PUNCTUATION:
                return False
            i += 2
            continue
        if char == "[":
            if regex[i + 1 : i + 2] == "^":
                return False  # Python's [^...] also matches a line break; grep's never sees one
            j = i + 1 + (regex[i + 1 : i + 2] == "]")  # a leading "]" is literal in both
            end = regex.find("]", j)
            if end < 0 or "\\" in regex[i + 1 : end] or "[" in regex[i + 1 : end]:
                return False
            i = end + 1
            continue
        if char == ".":
            return False  # Python's "." matches the U+FFFD of an undecodable byte; grep's not
        if char in "*+?" and regex[i + 1 : i + 2] in ("?", "+"):
            return False
        if char == "{":
            end = regex.find("}", i)
            inner = regex[i + 1 : end] if end > 0 else ""
            low, _, high = inner.partition(",")
            if not low.isdigit() or (high and not high.isdigit()):
                return False
            if int(low) > 255 or (high and int(high) > 255):
                return False  # grep refuses repeat counts above 32767
            if regex[end + 1 : end + 2] in ("?", "+"):
                return False
            i = end + 1
            continue
        if char == "}":
            return False
        i += 1
    return True


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
    # A run criterion's own ``env`` entries, applied after its task's: (name, value or
    # None to remove), in plan order. Pairs, not a dict, so the criterion stays hashable.
    env: tuple[tuple[str, str | None], ...] = ()

    def display(self) -> str:
        """The criterion as a shell command a worker can paste to verify itself.

        It must agree with the checker: a worker told to run a command that
        passes where the checker fails retries blind. ``grep`` is shown where
        it reads the check exactly as the checker does (a one-line text; a
        regex in the syntax POSIX ERE and Python share); otherwise the
        command is the checker's own test, spelled in Python.
        """
        q = shlex.quote
        if self.kind == "shell":
            return self.shell or ""
        if self.kind == "file_exists":
            return f"test -f {q(self.path or '')}"
        if self.kind == "contains" and self.regex is not None:
            if _grep_reads_as_python(self.regex):
                return f"grep -qaE -- {q(self.regex)} {q(self.path or '')}"
            return f"python3 -c {q(_PY_REGEX)} {q(self.regex)} {q(self.path or '')}"
        if self.kind == "contains":
            if "\n" not in (self.text or "") and "\r" not in (self.text or ""):
                return f"grep -qaF -- {q(self.text or '')} {q(self.path or '')}"
            return f"python3 -c {q(_PY_TEXT)} {q(self.text or '')} {q(self.path or '')}"
        if self.kind == "min_bytes":
            return f"test \"$(wc -c < {q(self.path or '')})\" -ge {self.min_bytes}"
        if self.env:
            # The worker has its task's env already; a criterion's own entries it must be told.
            words = ["env"]
            for name, value in self.env:
                words += ["-u", name] if value is None else [f"{name}={value}"]
            return shlex.join([*words, *self.argv])
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
    # The plan's ``defaults.env`` overlaid with the task's own ``env``: (name, value or None
    # to remove), for the task's criteria and its worker (see dispatch_kit.check.env).
    env: tuple[tuple[str, str | None], ...] = ()
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
