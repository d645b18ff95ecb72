"""Run a plan's exit criteria and produce the verdict document the loop acts on.

The orchestrator approves, retries or fails a task on this verdict, the retry
prompt quotes its output tails, and CI reads its JSON. So the document is a
stable contract (``schemas/check-result.schema.json``) and every criterion
ends with exactly one of four verdicts:

- ``pass``: exit status 0, or the structured check held;
- ``fail``: the check ran and said no (non-zero status, missing file, no match);
- ``timeout``: the limit passed; the criterion's whole process group was killed;
- ``error``: the check could not be run as written: its cwd does not exist, the
  command was not found or is not executable. The worker, not the check, must
  change something, and the message says what.

Shell criteria run with ``/bin/sh -c`` in the task's cwd; ``run`` criteria run
their argv without a shell; ``file_exists``, ``contains`` and ``min_bytes`` never
touch a shell, so a path or a pattern cannot be injected. A ``contains`` regex
runs in a child Python under the criterion's time limit like any command:
Python's regex engine backtracks, and ``^(a+)+$`` on forty ``a`` and a ``!``
would otherwise hold the checker for minutes with no way to stop it. The task's
folder and every structured check's file are resolved when the criterion runs
and refused when they leave the workspace (:mod:`dispatch_kit.check.confine`).
Commands get a defined environment (:mod:`dispatch_kit.check.env`): a UTF-8
locale and HOME where the caller had none, and a fresh empty Python bytecode
folder per run, so a stale ``__pycache__`` cannot fail a correct task; the
plan's ``env`` mappings (defaults, task, ``run`` criterion) are applied last.
Output that is not UTF-8 does not change a verdict: tails are decoded with
U+FFFD in place of bad bytes, so they always fit the JSON document.
"""

from __future__ import annotations

import os
import re
import stat
import time
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from dispatch_kit.check.confine import Escape, confined, realpath_or_escape, task_folder_stat
from dispatch_kit.check.env import NoPrivateFolder, criterion_env
from dispatch_kit.errors import InputError
from dispatch_kit.plan.model import Criterion, Plan, Task
from dispatch_kit.procs.run import Outcome, ProcessGroups, run

DEFAULT_CRITERION_TIMEOUT = 60.0
TAIL_BYTES = 4096
MAX_CONTAINS_BYTES = 64 * 1024 * 1024  # contains reads the whole file; refuse absurd ones
VERDICTS = ("pass", "fail", "timeout", "error")
SHELL = "/bin/sh"
RESULT_VERSION = 1

# The contains-regex test, in a child: argv = regex, file; exit 0 match, 1 none, 3 unreadable.
_REGEX_CHILD = (
    "import re,sys\n"
    "try:\n"
    " with open(sys.argv[2],'rb') as f:data=f.read()\n"
    "except OSError as e:\n"
    " sys.stderr.write(e.strerror or str(e));sys.exit(3)\n"
    "sys.exit(0 if re.search(sys.argv[1],data.decode('utf-8','replace'),re.M) else 1)\n"
)

_NOT_FOUND = re.compile(r"(?:^|: )([^\s:]+): (?:command )?not found\s*$", re.MULTILINE)


def check_plan(
    plan: Plan,
    task_ids: list[str] | None = None,
    jobs: int | None = None,
    *,
    default_timeout: float = DEFAULT_CRITERION_TIMEOUT,
    tail_bytes: int = TAIL_BYTES,
) -> dict[str, Any]:
    """Run the criteria of ``task_ids`` (all tasks by default) and return the result document.

    Criteria run on a pool of ``jobs`` threads (default: the number of cores) and
    are reported in plan order. On KeyboardInterrupt or SystemExit every running
    criterion's process group is killed before the exception propagates.
    """
    tasks = _select(plan, task_ids)
    groups = ProcessGroups()
    work = [(task, index, criterion) for task in tasks
            for index, criterion in enumerate(task.exit_criteria)]
    # The cores only when there is a choice to make: os.cpu_count() reads a /sys file.
    jobs = jobs or ((os.cpu_count() or 1) if len(work) > 1 else 1)
    if jobs == 1 or len(work) <= 1:
        # No pool for sequential work: a runner checks one task after every
        # attempt, and a thread pool per call is a measurable share of that.
        try:
            results = [
                check_criterion(plan, task, index, criterion, default_timeout=default_timeout,
                                tail_bytes=tail_bytes, groups=groups)
                for task, index, criterion in work
            ]
        except BaseException:
            groups.cancel()
            groups.kill_remaining()
            raise
        return _document(plan, tasks, results)
    executor = ThreadPoolExecutor(max_workers=min(jobs, len(work)), thread_name_prefix="criterion")
    futures: list[Future] = []
    try:
        for task, index, criterion in work:
            futures.append(executor.submit(
                check_criterion, plan, task, index, criterion,
                default_timeout=default_timeout, tail_bytes=tail_bytes, groups=groups,
            ))
        pending = set(futures)
        while pending:
            # Short waits keep the main thread responsive to Ctrl-C on every platform.
            _, pending = wait(pending, timeout=0.2, return_when=ALL_COMPLETED)
        results = [f.result() for f in futures]
    except BaseException:
        groups.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
        groups.kill_remaining()
        raise
    executor.shutdown(wait=True)
    return _document(plan, tasks, results)


def _select(plan: Plan, task_ids: list[str] | None) -> list[Task]:
    if not task_ids:
        return list(plan.tasks)
    known = [t.id for t in plan.tasks]
    unknown = [t for t in task_ids if t not in known]
    if unknown:
        raise InputError(
            f"unknown task {', '.join(repr(u) for u in unknown)}; the plan has: {', '.join(known)}",
            path=plan.path,
        )
    wanted = set(task_ids)
    return [t for t in plan.tasks if t.id in wanted]


def _document(plan: Plan, tasks: list[Task], results: list[dict]) -> dict[str, Any]:
    counts = dict.fromkeys(VERDICTS, 0)
    by_task: dict[str, list[dict]] = {t.id: [] for t in tasks}
    for task_id, result in results:
        counts[result["verdict"]] += 1
        by_task[task_id].append(result)
    task_docs = [
        {
            "id": t.id,
            "cwd": str(plan.task_dir(t)),
            "passed": all(r["verdict"] == "pass" for r in by_task[t.id]),
            "criteria": by_task[t.id],
        }
        for t in tasks
    ]
    return {
        "version": RESULT_VERSION,
        "plan": plan.path,
        "passed": all(t["passed"] for t in task_docs),
        "summary": counts,
        "tasks": task_docs,
    }


def criterion_timeout(task: Task, criterion: Criterion, default: float) -> float:
    """The criterion's own limit, else the default, never above the task's limit."""
    limit = criterion.timeout if criterion.timeout is not None else default
    return min(limit, task.timeout)


def check_criterion(
    plan: Plan,
    task: Task,
    index: int,
    criterion: Criterion,
    *,
    default_timeout: float = DEFAULT_CRITERION_TIMEOUT,
    tail_bytes: int = TAIL_BYTES,
    groups: ProcessGroups | None = None,
) -> tuple[str, dict[str, Any]]:
    """(task id, one criterion's result entry) — the unit of work the pool runs."""
    entry: dict[str, Any] = {
        "index": index,
        "criterion": criterion.display(),
        "kind": criterion.kind,
        "line": criterion.line,
        "verdict": "error",
        "exit_code": None,
        "duration": 0.0,
        "stdout_tail": "",
        "stderr_tail": "",
        "message": "",
    }
    start = time.monotonic()
    try:
        # Now, not when the plan was loaded; the workspace once for this criterion, its
        # folder and (structured checks) its file each when used (dispatch_kit.check.confine).
        root = realpath_or_escape(plan.workspace)
        cwd, info = task_folder_stat(plan.workspace, task.cwd, root)
    except Escape as exc:
        entry["message"] = f"refused: {exc}"
        return task.id, entry
    if isinstance(info, OSError) or not stat.S_ISDIR(info.st_mode):
        what = ("is not a directory" if not isinstance(info, OSError)
                else "does not exist yet" if isinstance(info, (FileNotFoundError,
                                                                NotADirectoryError))
                else f"cannot be looked at: {info.strerror or info}")
        entry["message"] = f"working directory {task.cwd} {what}"
    elif criterion.kind in ("shell", "run"):
        limit = criterion_timeout(task, criterion, default_timeout)
        argv = [SHELL, "-c", criterion.shell or ""] if criterion.kind == "shell" else list(
            criterion.argv)
        try:
            with criterion_env(task.env, criterion.env) as env:
                outcome = run(argv, cwd=cwd, timeout=limit, tail_bytes=tail_bytes,
                              groups=groups, env=env)
        except NoPrivateFolder as exc:
            entry["message"] = str(exc)
            entry["duration"] = round(time.monotonic() - start, 4)
            return task.id, entry
        _judge_process(entry, criterion, outcome, limit, cwd)
        entry["stdout_tail"] = outcome.stdout.text()
        entry["stderr_tail"] = outcome.stderr.text()
        entry["duration"] = round(outcome.duration, 4)
        return task.id, entry
    else:
        limit = criterion_timeout(task, criterion, default_timeout)
        verdict, message = _structured(cwd, criterion, workspace=plan.workspace, limit=limit,
                                       groups=groups, root=root)
        entry["verdict"], entry["message"] = verdict, message
        entry["exit_code"] = {"pass": 0, "fail": 1}.get(verdict)
    entry["duration"] = round(time.monotonic() - start, 4)
    return task.id, entry


def _judge_process(
    entry: dict, criterion: Criterion, outcome: Outcome, limit: float, cwd: str
) -> None:
    program = criterion.argv[0] if criterion.argv else SHELL
    code = outcome.returncode
    entry["exit_code"] = code
    if outcome.start_error is not None:
        exc = outcome.start_error
        if exc.filename == cwd:  # removed between the folder check and the start
            entry["message"] = f"cannot enter working directory {cwd}: {exc.strerror or exc}"
        elif isinstance(exc, FileNotFoundError):
            entry["message"] = f"command not found: {program}"
        elif isinstance(exc, PermissionError):
            entry["message"] = f"permission denied: {program} is not executable"
        else:
            entry["message"] = f"cannot start {program}: {exc.strerror or exc}"
    elif outcome.cancelled:
        entry["message"] = "interrupted before it finished"
    elif outcome.timed_out:
        entry["verdict"] = "timeout"
        entry["message"] = f"no result within {limit:g} s; its process group was killed"
    elif not (outcome.stdout.is_utf8() and outcome.stderr.is_utf8()):
        # A criterion whose output is not text cannot be reported faithfully;
        # say so rather than approve or fail on output nobody can read.
        stream = "stdout" if not outcome.stdout.is_utf8() else "stderr"
        entry["message"] = (
            f"{stream} is not valid UTF-8 (exit code {code}); the tail shows bad bytes as U+FFFD"
        )
    elif code == 0:
        entry["verdict"] = "pass"
    elif criterion.kind == "shell" and code == 127 and _NOT_FOUND.search(outcome.stderr.text()):
        names = _NOT_FOUND.findall(outcome.stderr.text())
        entry["message"] = f"command not found: {names[-1]}"
    elif criterion.kind == "shell" and code == 126:
        entry["message"] = f"command cannot be executed (exit 126): {_last_line(outcome)}"
    else:
        entry["verdict"] = "fail"
        if code is not None and code < 0:
            entry["message"] = f"killed by signal {_signal_name(-code)}"
        else:
            entry["message"] = f"exit code {code}"
        detail = _last_line(outcome)
        if detail:
            entry["message"] += f": {detail}"


def _last_line(outcome: Outcome) -> str:
    """The last non-blank output line (stderr first), one line, at most 200 characters."""
    for tail in (outcome.stderr, outcome.stdout):
        lines = [ln.strip() for ln in tail.text().splitlines() if ln.strip()]
        if lines:
            line = "".join(ch if ch.isprintable() else "?" for ch in lines[-1])
            return line if len(line) <= 200 else line[:197] + "..."
    return ""


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _structured(cwd: Path | str, criterion: Criterion, *, workspace: Path | None = None,
                limit: float = DEFAULT_CRITERION_TIMEOUT,
                groups: ProcessGroups | None = None, root: str | None = None) -> tuple[str, str]:
    """Verdict and message of a check that needs no shell: file_exists, contains, min_bytes.

    ``root`` is the workspace (``cwd`` without one) already resolved by the caller in
    this same check; the file is resolved here, when it is used.
    """
    rel = criterion.path or ""
    try:
        if root is None:
            root = realpath_or_escape(cwd if workspace is None else workspace)
        real, info = confined(root, os.path.join(cwd, rel), what="path")
    except Escape as exc:
        return "error", f"refused: {exc}"
    # What stat said of the resolved file while resolving it: the same look as a new stat.
    if isinstance(info, FileNotFoundError):
        return "fail", f"no such file: {rel}"
    if isinstance(info, NotADirectoryError):
        return "fail", f"no such file: {rel} (a parent is not a directory)"
    if isinstance(info, OSError):
        return "error", f"cannot read {rel}: {info.strerror or info}"
    if not stat.S_ISREG(info.st_mode):
        return "fail", f"{rel} exists but is not a regular file"
    if criterion.kind == "file_exists":
        return "pass", ""
    if criterion.kind == "min_bytes":
        needed = criterion.min_bytes or 0
        if info.st_size >= needed:
            return "pass", ""
        return "fail", f"{rel} has {info.st_size} bytes, needs at least {needed}"
    if info.st_size > MAX_CONTAINS_BYTES:
        return "error", f"{rel} is larger than {MAX_CONTAINS_BYTES // (1024 * 1024)} MiB; " \
                        "use a shell criterion (grep) for it"
    if criterion.regex is not None:
        return _regex_in_child(Path(real), rel, criterion.regex, limit, groups)
    try:
        with open(real, "rb") as handle:
            data = handle.read(MAX_CONTAINS_BYTES + 1)
    except OSError as exc:
        return "error", f"cannot read {rel}: {exc.strerror or exc}"
    if (criterion.text or "").encode("utf-8") in data:
        return "pass", ""
    return "fail", f"{rel} does not contain {criterion.text!r}"


def _regex_in_child(target: Path, rel: str, regex: str, limit: float,
                    groups: ProcessGroups | None) -> tuple[str, str]:
    """Search ``target`` for ``regex`` in a child Python, stopped at ``limit`` like a command.

    ``-I`` keeps the task's PYTHONPATH and the user's site folder out; the
    child reads the file the parent just confined and found regular.
    """
    import sys

    argv = [sys.executable, "-I", "-S", "-c", _REGEX_CHILD, regex, str(target)]
    outcome = run(argv, cwd=str(target.parent), timeout=limit, tail_bytes=512, groups=groups,
                  env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"})
    if outcome.start_error is not None:
        return "error", f"cannot start the regex check: {outcome.start_error}"
    if outcome.cancelled:
        return "error", "interrupted before it finished"
    if outcome.timed_out:
        return "timeout", (f"no result within {limit:g} s searching {rel} for regex "
                           f"{regex!r}; the search was stopped")
    if outcome.returncode == 0:
        return "pass", ""
    if outcome.returncode == 1:
        return "fail", f"{rel} has no match for regex {regex!r}"
    detail = _printable(outcome.stderr.text().strip()[-200:]) or f"exit {outcome.returncode}"
    return "error", f"cannot search {rel}: {detail}"


# --- text output ----------------------------------------------------------------------------

TEXT_TAIL_LINES = 6


def render_text(result: dict[str, Any]) -> str:
    """One line per criterion (``task[index] verdict duration criterion``), details, a summary."""
    lines = []
    width = max((len(f"{t['id']}[{c['index']}]") for t in result["tasks"]
                 for c in t["criteria"]), default=0)
    total = 0.0
    for task in result["tasks"]:
        for c in task["criteria"]:
            total += c["duration"]
            label = f"{task['id']}[{c['index']}]".ljust(width)
            lines.append(f"{label}  {c['verdict']:<7}  {c['duration']:7.3f}s  "
                         f"{_one_line(c['criterion'])}")
            if c["verdict"] == "pass":
                continue
            lines.append(f"    {_printable(c['message'])}")
            for stream in ("stderr", "stdout"):
                tail = [ln for ln in c[f"{stream}_tail"].splitlines() if ln.strip()]
                tail = tail[-TEXT_TAIL_LINES:]
                for text in tail:
                    lines.append(f"    {stream}| {_printable(text)}")
    counts = result["summary"]
    verdict = "all passed" if result["passed"] else "NOT PASSED"
    number = sum(counts.values())
    lines.append(
        f"check: {number} criteria in {len(result['tasks'])} tasks: "
        + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
        + f" ({verdict})"
    )
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """A multi-line criterion (a YAML block scalar) shown by its first line."""
    lines = text.strip().splitlines() or [""]
    return _printable(lines[0]) + (" ..." if len(lines) > 1 else "")


def _printable(text: str) -> str:
    """Keep a criterion's output from moving the cursor or recolouring the terminal."""
    return "".join(ch if ch.isprintable() or ch == "\t" else "\N{REPLACEMENT CHARACTER}"
                   for ch in text)
