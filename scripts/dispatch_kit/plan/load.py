"""Load a plan file and reject, with file:line:col, everything that would break a run later.

A plan is written by a person or by an orchestrating agent, then drives
workers unattended for a long time. A typo found at validation costs a second;
the same typo found by a worker hours in costs the mission. So validation is
strict and exhaustive: the JSON Schema (shipped, so editors check plans as
they are typed) catches shapes and types, then the checks a schema cannot
express run: the task count, unique ids, known dependencies, cycles, vague
criteria, regexes that do not compile, and working directories that escape
the workspace through ``..`` or a symlink. Every problem is reported, not only
the first, each as one ``file:line:col: message`` line.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.plan.model import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TASKS,
    DEFAULT_TIMEOUT,
    MIN_TASKS,
    RESERVED_ENV_PREFIX,
    Criterion,
    Plan,
    Task,
)
from dispatch_kit.plan.vague import vague_reason
from dispatch_kit.readers.yamlfile import locate, position, read_document, to_plain

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "plan.schema.json"
STRUCTURED_KINDS = ("file_exists", "contains", "min_bytes", "run")
Keys = list[Any]


def schema_text() -> str:
    """The plan JSON Schema exactly as shipped (what ``dispatch-kit plan schema`` prints)."""
    return SCHEMA_PATH.read_text(encoding="utf-8")


def load_plan(path: str, *, max_tasks: int = DEFAULT_MAX_TASKS) -> Plan:
    """The validated plan; raises the first problem as an InputError."""
    plan, errors = validate_plan(path, max_tasks=max_tasks)
    if errors:
        raise errors[0]
    assert plan is not None
    return plan


def validate_plan(
    path: str, *, max_tasks: int = DEFAULT_MAX_TASKS
) -> tuple[Plan | None, list[InputError]]:
    """The plan and no errors, or None and every problem found, in file order."""
    if max_tasks < MIN_TASKS:
        raise InputError(f"--max-tasks must be at least {MIN_TASKS}, got {max_tasks}")
    try:
        doc = read_document(path)
    except InputError as exc:
        exc.path = exc.path or path
        if exc.line is None and (path == "-" or Path(path).is_file()):
            exc.line, exc.column = 1, 1  # keep the file:line:col shape tools parse
        return None, [exc]
    if not isinstance(doc, dict):
        found = "a list" if isinstance(doc, list) else f"a single value ({type(doc).__name__})"
        message = f"a plan must be a mapping with goal, workspace and tasks; found {found}"
        return None, [InputError(message, path, 1, 1)]
    try:
        plain = to_plain(doc)
        tasks = plain.get("tasks")
        if isinstance(tasks, list) and len(tasks) > max_tasks:
            # Say that first and only: schema and semantic checks of tens of thousands of
            # tasks cost tens of seconds and hundreds of MB to report what this line says.
            report = _Report(doc, path)
            report.add(["tasks"], f"the plan has {len(tasks)} tasks; at most {max_tasks} are "
                                  "allowed (split the mission, or raise the cap with --max-tasks)")
            return None, report.errors
        value_errors = _value_errors(doc, plain, path)
        if value_errors:
            return None, value_errors
        errors = _schema_errors(doc, plain, path) + _semantic_errors(doc, plain, path, max_tasks)
    except RecursionError:
        return None, [InputError("plan is nested too deeply", path, 1, 1)]
    if errors:
        unique = {str(e): e for e in errors}
        ordered = sorted(unique.values(), key=lambda e: (e.line or 0, e.column or 0))
        return None, ordered
    return _build(doc, plain, path), []


def summary(plan: Plan) -> str:
    """The one line ``plan validate`` prints for a good plan."""
    criteria = sum(len(t.exit_criteria) for t in plan.tasks)
    order = " -> ".join(t.id for t in plan.order())
    return (
        f"{plan.path}: OK: {len(plan.tasks)} tasks, {criteria} exit criteria; "
        f"dependency order: {order}"
    )


# --- schema ---------------------------------------------------------------------------------


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text()))


def _schema_errors(doc: Any, plain: Any, path: str) -> list[InputError]:
    raw = list(_validator().iter_errors(plain))
    type_errors = {tuple(e.absolute_path) for e in raw if e.validator == "type"}
    split = _split_commands(plain)
    found = [InputError(message, path, *locate(doc, keys)) for keys, message in split.items()]
    for error in raw:
        keys = list(error.absolute_path)
        if any(tuple(keys[: len(k)]) == k for k in split):
            continue  # already explained as a command YAML split at ': '
        if error.validator == "oneOf" and tuple(keys) in type_errors:
            continue  # "must be a mapping" already says it; the oneOf line would only repeat it
        if "propertyNames" in error.schema_path:
            continue  # env names: _check_env says it, at the name's own line
        for at, message in _describe(error, keys):
            found.append(InputError(message, path, *locate(doc, at)))
    return found


def _split_commands(plain: dict) -> dict[tuple, str]:
    """Shell criteria that YAML read as a one-key mapping because they contain ': '.

    ``- grep -qx 'VERDICT: PASS' out.md`` is a mapping to YAML. The schema can only say
    "unknown field"; the fix the author needs is to quote the command.
    """
    found: dict[tuple, str] = {}
    tasks = plain.get("tasks")
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        criteria = task.get("exit_criteria") if isinstance(task, dict) else None
        for j, item in enumerate(criteria if isinstance(criteria, list) else []):
            if not (isinstance(item, dict) and len(item) == 1):
                continue
            (key, value), = item.items()
            if key in STRUCTURED_KINDS or not re.search(r"\s", str(key)):
                continue
            command = f"{key}: {value}" if value is not None else f"{key}:"
            keys = ("tasks", i, "exit_criteria", j)
            found[keys] = (
                f"{_where(list(keys))}: YAML read this shell command as a mapping because it "
                f"contains ': '; quote the whole command: - {json.dumps(command)}"
            )
    return found


_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    return "a list" if isinstance(value, list) else "a mapping"


def _yaml_scalar(value: Any) -> str:
    """A number or boolean as its author most likely typed it (1, 0.5, true)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _where(keys: Keys) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "plan"


def _is_criterion(keys: Keys) -> bool:
    return len(keys) >= 2 and keys[-2] == "exit_criteria" and isinstance(keys[-1], int)


def _describe(error: Any, keys: Keys) -> list[tuple[Keys, str]]:
    """Turn one jsonschema error into (position keys, message) lines a person can act on."""
    where = _where(keys)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind in ("oneOf", "anyOf") and "errorMessage" in schema:
        return [(keys, f"{where}: {schema['errorMessage']}")]
    if kind == "required":
        match = re.match(r"'(.+)' is a required property", error.message)
        name = match.group(1) if match else error.message
        return [(keys, f"{where}: missing required field '{name}'")]
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        lines = []
        for key in error.instance:
            if key in allowed or any(re.search(p, str(key)) for p in patterns):
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(allowed)})"
            lines.append((keys + [key], f"{where}: unknown field '{key}'{extra}"))
        return lines
    if kind == "type":
        if len(keys) >= 2 and keys[-2] == "env" and isinstance(error.instance, (int, float)):
            return [(keys, f"{where}: must be a string or null (to remove the variable); got "
                           f"{_kind_of(error.instance)}: quote it, as in {keys[-1]}: "
                           f"{json.dumps(_yaml_scalar(error.instance))}")]
        if len(keys) >= 2 and keys[-2] == "env":
            return [(keys, f"{where}: must be a string or null (to remove the variable); got "
                           f"{_kind_of(error.instance)}")]
        if _is_criterion(keys):
            return [(keys, f"{where}: a criterion is a shell command (a string) or a mapping with "
                           f"one of {', '.join(STRUCTURED_KINDS)}; got {_kind_of(error.instance)}")]
        if keys and keys[-1] == "exit_criteria" and error.instance is None:
            return [(keys, f"{where}: is empty; a task needs at least one exit criterion")]
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return [(keys, f"{where}: must be {wanted}, got {_kind_of(error.instance)}")]
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [(keys, f"{where}: must be one of {choices}; got {_kind_of(error.instance)}")]
    if kind == "minLength":
        return [(keys, f"{where}: must not be empty")]
    if kind == "minItems":
        count = len(error.instance)
        if keys == ["tasks"]:
            message = f"a plan needs at least {MIN_TASKS} tasks, found {count}"
        elif keys and keys[-1] == "exit_criteria":
            message = "a task needs at least one exit criterion, found none"
        elif keys and keys[-1] == "run":
            message = "run needs at least the program to run"
        else:
            message = f"needs at least {error.validator_value} item(s), found {count}"
        return [(keys, f"{where}: {message}")]
    if kind == "exclusiveMinimum":
        return [(keys, f"{where}: must be greater than {error.validator_value}, "
                       f"got {error.instance!r}")]
    if kind == "minimum":
        return [(keys, f"{where}: must be at least {error.validator_value}, "
                       f"got {error.instance!r}")]
    if kind == "uniqueItems":
        return [(keys, f"{where}: lists the same task more than once")]
    if kind == "pattern":
        rule = schema.get("description", f"must match {error.validator_value}")
        return [(keys, f"{where}: invalid value {error.instance!r}; {rule[0].lower()}{rule[1:]}")]
    return [(keys, f"{where}: {error.message}")]


# --- checks a schema cannot express ---------------------------------------------------------


class _Report:
    """Collects errors positioned against the ruamel document."""

    def __init__(self, doc: Any, path: str) -> None:
        self.doc = doc
        self.path = path
        self.errors: list[InputError] = []

    def add(self, keys: Keys, message: str) -> None:
        self.errors.append(InputError(message, self.path, *locate(self.doc, keys)))


# Past this, an integer loses precision in JSON and a retry count overflows SQLite.
_MAX_INT = (1 << 53) - 1
_MAX_PATH = 1024


def _value_errors(doc: Any, plain: Any, path: str) -> list[InputError]:
    """Values no later command can use, found before the schema sees them: NaN and
    infinities, integers past SQLite's, NUL bytes and lone surrogates in text, and
    ``cwd``/``workspace`` paths the OS would refuse (too long)."""
    import math

    report = _Report(doc, path)
    stack: list[tuple[Keys, Any]] = [([], plain)]
    while stack:
        keys, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and not _clean_text(key):
                    report.add(keys, "a key holds a NUL byte or a lone surrogate")
                stack.append((keys + [key], item))
        elif isinstance(value, list):
            stack.extend((keys + [i], item) for i, item in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, float) and not math.isfinite(value):
            report.add(keys, f"{value} is not a finite number")
        elif isinstance(value, int) and not -_MAX_INT <= value <= _MAX_INT:
            report.add(keys, "integer out of range (at most 2**53 - 1)")
        elif isinstance(value, str):
            if not _clean_text(value):
                report.add(keys, "text holds a NUL byte or a lone surrogate (not valid UTF-8)")
            elif keys and keys[-1] in ("cwd", "workspace") and (
                len(value) > _MAX_PATH or any(len(part.encode()) > 255
                                              for part in value.split("/"))):
                report.add(keys, "path too long (a folder name over 255 bytes or a path over "
                                 f"{_MAX_PATH} characters)")
    return sorted(report.errors, key=lambda e: (e.line or 0, e.column or 0))


def _clean_text(text: str) -> bool:
    if "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _semantic_errors(doc: Any, plain: dict, path: str, max_tasks: int) -> list[InputError]:
    report = _Report(doc, path)
    tasks = plain.get("tasks")
    if not isinstance(tasks, list):
        return report.errors
    if len(tasks) > max_tasks:
        report.add(["tasks"], f"the plan has {len(tasks)} tasks; at most {max_tasks} are allowed "
                              "(split the mission, or raise the cap with --max-tasks)")
    entries = [(i, t) for i, t in enumerate(tasks) if isinstance(t, dict)]
    ids = _check_ids(report, entries)
    _check_dependencies(report, entries, ids)
    workspace = _check_workspace(report, plain, path)
    defaults = plain.get("defaults")
    if isinstance(defaults, dict):
        _check_env(report, ["defaults", "env"], defaults.get("env"))
    for i, task in entries:
        label = f"task '{task['id']}'" if isinstance(task.get("id"), str) else f"tasks[{i}]"
        if workspace is not None:
            _check_cwd(report, i, task, label, workspace)
        _check_env(report, ["tasks", i, "env"], task.get("env"))
        criteria = task.get("exit_criteria")
        if isinstance(criteria, list):
            for j, criterion in enumerate(criteria):
                _check_criterion(report, ["tasks", i, "exit_criteria", j], criterion, label)
    return report.errors


def _check_ids(report: _Report, entries: list[tuple[int, dict]]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i, task in entries:
        task_id = task.get("id")
        if not isinstance(task_id, str):
            continue
        if task_id in ids:
            first_line, _ = position(report.doc["tasks"], ids[task_id])
            where = f"line {first_line}" if first_line else f"tasks[{ids[task_id]}]"
            report.add(["tasks", i, "id"], f"duplicate task id '{task_id}' (first used at {where})")
        else:
            ids[task_id] = i
    return ids


def _check_dependencies(report: _Report, entries: list[tuple[int, dict]], ids: dict) -> None:
    edges: dict[str, list[tuple[str, Keys]]] = {}
    for i, task in entries:
        task_id, deps = task.get("id"), task.get("depends_on")
        if not isinstance(deps, list):
            continue
        for j, dep in enumerate(deps):
            keys = ["tasks", i, "depends_on", j]
            if not isinstance(dep, str):
                continue
            if dep == task_id:
                report.add(keys, f"task '{task_id}' depends on itself")
            elif dep not in ids:
                hint = difflib.get_close_matches(dep, list(ids), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                report.add(keys, f"task '{task_id}' depends on unknown task '{dep}'{extra}")
            elif isinstance(task_id, str) and ids.get(task_id) == i:
                edges.setdefault(task_id, []).append((dep, keys))
    for cycle, keys in _cycles(edges, list(ids)):
        report.add(keys, f"dependency cycle: {' -> '.join(cycle)} (each task waits for the next)")


def _cycles(edges: dict[str, list[tuple[str, Keys]]], order: list[str]) -> list:
    """Each distinct dependency cycle once, starting at its earliest task in plan order."""
    rank = {task_id: n for n, task_id in enumerate(order)}
    state: dict[str, str] = {}
    seen: set[frozenset] = set()
    found = []
    for start in order:
        if start in state:
            continue
        state[start] = "open"
        path = [start]
        stack = [iter(edges.get(start, []))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = "done"
                stack.pop()
                continue
            dep = step[0]
            if state.get(dep) == "open":
                loop = path[path.index(dep):]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    first = min(range(len(loop)), key=lambda k: rank[loop[k]])
                    loop = loop[first:] + loop[:first]
                    nxt = loop[1 % len(loop)]
                    keys = next(k for d, k in edges[loop[0]] if d == nxt)
                    found.append((loop + [loop[0]], keys))
            elif dep not in state:
                state[dep] = "open"
                path.append(dep)
                stack.append(iter(edges.get(dep, [])))
    return found


def _check_workspace(report: _Report, plain: dict, path: str) -> Path | None:
    value = plain.get("workspace", ".")
    if not isinstance(value, str) or not value:
        return None
    try:
        workspace = (_plan_dir(path) / value).resolve()
    except (OSError, RuntimeError) as exc:
        report.add(["workspace"], f"workspace '{value}' cannot be resolved: {exc}")
        return None
    if workspace.exists() and not workspace.is_dir():
        report.add(["workspace"], f"workspace '{value}' is not a directory")
        return None
    return workspace


def _check_cwd(report: _Report, i: int, task: dict, label: str, workspace: Path) -> None:
    cwd = task.get("cwd")
    if not isinstance(cwd, str) or not cwd:
        return
    keys = ["tasks", i, "cwd"]
    if Path(cwd).is_absolute():
        report.add(keys, f"{label}: cwd '{cwd}' must be relative to the workspace")
        return
    try:
        target = (workspace / cwd).resolve()
    except (OSError, RuntimeError) as exc:
        report.add(keys, f"{label}: cwd '{cwd}' cannot be resolved: {exc}")
        return
    if target.is_relative_to(workspace):
        return
    lexical = Path(os.path.normpath(workspace / cwd))
    if lexical.is_relative_to(workspace):
        report.add(keys, f"{label}: cwd '{cwd}' leaves the workspace through a symlink "
                         f"(it resolves to {target})")
    else:
        report.add(keys, f"{label}: cwd '{cwd}' is outside the workspace")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_env(report: _Report, keys: Keys, env: Any) -> None:
    """Variable names a shell and ``env`` accept, none of the runner's own."""
    if not isinstance(env, dict):
        return  # the schema reports a wrong type
    where = _where(keys)
    for name in env:
        if not _ENV_NAME.fullmatch(str(name)):
            report.add(keys + [name], f"{where}: invalid variable name {str(name)!r}: use letters, "
                                      "digits and _, not starting with a digit")
        elif str(name).startswith(RESERVED_ENV_PREFIX):
            report.add(keys + [name], f"{where}: {name} is reserved: dispatch-kit sets "
                                      f"{RESERVED_ENV_PREFIX}* variables for each worker")


def _check_criterion(report: _Report, keys: Keys, criterion: Any, label: str) -> None:
    if isinstance(criterion, str):
        reason = vague_reason(criterion)
        if reason:
            report.add(keys, f"{label}: vague exit criterion {criterion!r}: {reason}; write a "
                             "shell command that exits 0 on success, or a structured check")
        return
    if not isinstance(criterion, dict):
        return
    contains = criterion.get("contains")
    if isinstance(contains, dict) and isinstance(contains.get("regex"), str):
        try:
            re.compile(contains["regex"], re.MULTILINE)
        except re.error as exc:
            report.add(keys + ["contains", "regex"],
                       f"{label}: invalid regex {contains['regex']!r}: {exc}")
    if "env" in criterion:
        if "run" in criterion or not any(k in criterion for k in STRUCTURED_KINDS):
            _check_env(report, keys + ["env"], criterion["env"])
        else:
            kind = next(k for k in STRUCTURED_KINDS if k in criterion)
            report.add(keys + ["env"], f"{label}: env applies to a run criterion only; "
                                       f"{kind} is checked in-process and starts no command")
    run = criterion.get("run")
    if isinstance(run, list) and run and isinstance(run[0], str) and len(run[0].split()) > 1:
        report.add(keys + ["run"], f"{label}: run[0] {run[0]!r} holds several words; give each "
                                   "argument its own list item, or write a shell string")


def _plan_dir(path: str) -> Path:
    return Path.cwd() if path == "-" else Path(path).resolve().parent


# --- building the model ---------------------------------------------------------------------


def _build(doc: Any, plain: dict, path: str) -> Plan:
    defaults = plain.get("defaults") or {}
    plan_timeout = float(defaults.get("timeout", DEFAULT_TIMEOUT))
    plan_retries = int(defaults.get("max_retries", DEFAULT_MAX_RETRIES))
    plan_env = dict(defaults.get("env") or {})
    tasks = []
    for i, task in enumerate(plain["tasks"]):
        criteria = tuple(
            _criterion(c, position(doc["tasks"][i]["exit_criteria"], j)[0])
            for j, c in enumerate(task["exit_criteria"])
        )
        tasks.append(
            Task(
                id=task["id"],
                title=task["title"],
                type=task["type"],
                cwd=task["cwd"],
                description=task.get("description", ""),
                depends_on=tuple(task.get("depends_on", ())),
                exit_criteria=criteria,
                timeout=float(task.get("timeout", plan_timeout)),
                max_retries=int(task.get("max_retries", plan_retries)),
                line=position(doc["tasks"], i)[0],
                env=tuple({**plan_env, **(task.get("env") or {})}.items()),
                extra={k: v for k, v in task.items() if k.startswith("x-")},
            )
        )
    return Plan(
        goal=plain["goal"],
        workspace=(_plan_dir(path) / plain.get("workspace", ".")).resolve(),
        tasks=tuple(tasks),
        path=path,
        allow_commits=bool(plain.get("allow_commits", False)),
        timeout=plan_timeout,
        max_retries=plan_retries,
        extra={k: v for k, v in plain.items() if k.startswith("x-")},
    )


def _criterion(value: Any, line: int | None) -> Criterion:
    if isinstance(value, str):
        return Criterion(kind="shell", shell=value, line=line)
    timeout = float(value["timeout"]) if "timeout" in value else None
    if "file_exists" in value:
        return Criterion(kind="file_exists", path=value["file_exists"], timeout=timeout, line=line)
    if "contains" in value:
        spec = value["contains"]
        return Criterion(kind="contains", path=spec["path"], text=spec.get("text"),
                         regex=spec.get("regex"), timeout=timeout, line=line)
    if "min_bytes" in value:
        spec = value["min_bytes"]
        return Criterion(kind="min_bytes", path=spec["path"], min_bytes=int(spec["bytes"]),
                         timeout=timeout, line=line)
    return Criterion(kind="run", argv=tuple(value["run"]), timeout=timeout, line=line,
                     env=tuple((value.get("env") or {}).items()))
