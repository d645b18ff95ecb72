"""Render the pack's prompt templates, turning every template or variable defect into one line.

A dispatch prompt is only as good as the facts pasted into it, and orchestrators
paste them by hand under time pressure. The templates here carry the wording
once; this module fills them from a plan (the worker prompt, the retry
addendum) or from a variables file (everything else). Two properties matter:

- A missing variable is an error naming it and the template line, never a
  prompt that silently says "Working directory: " with nothing after it
  (``StrictUndefined``).
- Templates and variables files are user input, so rendering runs in Jinja's
  sandbox: ``{{ ''.__class__.__mro__ }}`` and friends fail as bad input
  instead of reaching Python internals.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatch_kit.check.confine import realpath, within
from dispatch_kit.durations import prose_duration
from dispatch_kit.errors import InputError
from dispatch_kit.packroot import templates_dir, templates_path

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from dispatch_kit.plan.model import Plan, Task

SUFFIX = ".md.j2"
CLAUSES = "clauses"
# A retry prompt shows the end of each failing command's output: enough for a
# traceback or a compiler error, short enough not to drown the task.
TAIL_LINES = 40
FAILING_VERDICTS = ("fail", "timeout", "error")
# Python errors a render raises when a variable has the wrong shape (an InputError each).
VARIABLE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


# --------------------------------------------------------------------------- names


def template_names() -> list[str]:
    """The templates the pack ships (``templates/<name>.md.j2``), sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in templates_dir().glob(f"*{SUFFIX}"))


def clause_names() -> list[str]:
    """The shared clauses (``templates/clauses/<name>.md.j2``), sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in (templates_dir() / CLAUSES).glob(f"*{SUFFIX}"))


def template_path(name: str) -> Path:
    """The file behind a template name; an unknown name lists the known ones."""
    return Path(_template_file(templates_path(), name))


def _template_file(root: str, name: str) -> str:
    """The file behind a template name in the templates folder ``root``, as a string."""
    path = os.path.join(root, f"{name}{SUFFIX}")
    if "/" in name or "\\" in name or name.startswith(".") or not os.path.isfile(path):
        known = ", ".join(template_names()) or "none"
        raise InputError(
            f"unknown template '{name}'; known templates: {known}", path=str(templates_dir())
        )
    return path


# --------------------------------------------------------------------------- environment


@lru_cache(maxsize=4)
def _environment(root: str) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class PromptEnvironment(SandboxedEnvironment):
        """The sandbox, with each template's globals a plain dict instead of a ChainMap.

        Jinja layers a template's globals over the environment's in a ChainMap, so that
        changing ``env.globals`` later still reaches loaded templates. Every
        ``{% import %}`` then compares the importer's global names with the imported
        template's, one ChainMap lookup per name, and every render copies the ChainMap
        into its context: some 30 us of the worker prompt's 74 us render (four imports
        a prompt), paid once per task by the runner. The globals here are fixed when the
        environment is built (below) and never changed after, so a snapshot holds the
        same names and values.
        """

        def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
            return {**self.globals, **(d or {})}

    env = PromptEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown for agents, not HTML
    )
    env.filters["code"] = inline_code
    env.filters["fence"] = fenced
    env.filters["duration"] = prose_duration
    return env


def environment() -> SandboxedEnvironment:
    """The sandboxed environment for the current pack root (cached per root)."""
    return _environment(templates_path())


# --------------------------------------------------------------------------- filters


# Runs of backticks, compiled once: every worker prompt puts a handful of paths and
# commands through these filters.
BACKTICK_RUN = re.compile(r"`+")
FENCE_RUN = re.compile(r"`{3,}")


def inline_code(text: Any) -> str:
    """``text`` as a Markdown code span, whatever backticks it contains."""
    text = str(text).replace("\n", " ")
    if "`" not in text:  # the usual path or command: one backtick each side
        return f"`{text}`"
    longest = max(len(run) for run in BACKTICK_RUN.findall(text))
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: Any, lang: str = "") -> str:
    """``text`` as a fenced code block whose fence no line inside can close."""
    text = str(text).rstrip("\n")
    longest = max((len(run) for run in FENCE_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


# --------------------------------------------------------------------------- rendering


def render_template(name: str, variables: Mapping[str, Any]) -> str:
    """Render ``templates/<name>.md.j2`` with ``variables``; every defect is an InputError."""
    root = templates_path()
    path = _template_file(root, name)
    env = _environment(root)
    return _guarded(path, lambda: env.get_template(f"{name}{SUFFIX}").render(variables))


def render_clause(name: str) -> str:
    """The text of a shared clause that takes no arguments, ending in one newline.

    ``render_clause("stream-safety")`` is the canonical stream-safety block:
    the templates import the same macro and the linter's ``--fix`` inserts this
    text, so the wording has one source.
    """
    path = templates_dir() / CLAUSES / f"{name}{SUFFIX}"
    if "/" in name or name.startswith(".") or not path.is_file():
        known = ", ".join(clause_names()) or "none"
        raise InputError(f"unknown clause '{name}'; known clauses: {known}", path=str(path.parent))
    macro_name = name.replace("-", "_")
    env = environment()

    def call() -> str:
        module = env.get_template(f"{CLAUSES}/{path.name}").module
        macro = getattr(module, macro_name, None)
        if macro is None:
            raise InputError(f"clause file defines no macro '{macro_name}'", path=str(path))
        if macro.arguments:
            args = ", ".join(macro.arguments)
            raise InputError(
                f"clause '{name}' takes arguments ({args}); it is rendered through a template",
                path=str(path),
            )
        return str(macro())

    return _guarded(path, call).strip("\n") + "\n"


def _guarded(path: str | Path, action: Callable[[], str]) -> str:
    """Run a render, converting Jinja and Python errors into InputError at the template line."""
    try:
        return action()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - what is not a render defect is raised as it was
        error = _render_error(exc, str(path))
        if error is None:
            raise
        raise error from None


def _render_error(exc: Exception, path: str) -> InputError | None:
    """The InputError a render's exception means, at the template line; None if not a defect.

    Jinja is imported here, on the error path, rather than by every render.
    """
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    if isinstance(exc, TemplateSyntaxError):
        message = f"template syntax error: {exc.message}"
        return InputError(message, path=exc.filename or path, line=exc.lineno)
    if isinstance(exc, RecursionError):
        return InputError("template recursion too deep", path=path)
    if not isinstance(exc, (UndefinedError, SecurityError, TemplateNotFound, TemplateError,
                            *VARIABLE_ERRORS)):
        return None
    where, line = _template_frame(exc, path)
    if isinstance(exc, UndefinedError):
        return InputError(_undefined_message(exc, where), path=where, line=line)
    if isinstance(exc, SecurityError):
        return InputError(f"blocked by the template sandbox: {exc}", path=where, line=line)
    if isinstance(exc, TemplateNotFound):
        return InputError(f"template not found: {exc.name}", path=where, line=line)
    if isinstance(exc, TemplateError):
        return InputError(f"template error: {exc}", path=where, line=line)
    # A variable of the wrong shape (a number where a list was expected, ...).
    return InputError(
        f"cannot render {Path(where).name}: {type(exc).__name__}: {exc}"
        " (check the types of the variables)",
        path=where,
        line=line,
    )


def _template_frame(exc: BaseException, fallback: str | Path) -> tuple[str, int | None]:
    """The innermost template file and line in the traceback.

    Jinja rewrites the traceback of a render error so that frames of compiled
    template code carry the template's file name and source line.
    """
    found: tuple[str, int | None] = (str(fallback), None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _undefined_message(exc: Exception, where: str) -> str:
    try:
        shown = Path(where).resolve().relative_to(templates_dir().resolve()).as_posix()
    except ValueError:
        shown = Path(where).name
    text = getattr(exc, "message", None) or str(exc)
    match = re.fullmatch(r"'([^']+)' is undefined", text)
    if match:
        return f"undefined variable '{match.group(1)}' in template {shown}"
    match = re.search(r"has no attribute '([^']+)'", text)
    if match:
        return f"undefined variable: missing field '{match.group(1)}' ({text}) in template {shown}"
    return f"undefined variable: {text} in template {shown}"


# --------------------------------------------------------------------------- variables files


def load_vars(path: str, template: str | None = None) -> dict[str, Any]:
    """Variables for a template from a YAML or JSON file whose top level is a mapping.

    Read like a plan (the same reader, the same JSON fallback), so every defect
    of the file is named at ``file:line:col``. For ``retry`` the failures are
    checked too: a verdict the addendum cannot explain is refused where it is
    written, not rendered as if it were a failure.
    """
    from dispatch_kit.readers.yamlfile import read_document, to_plain

    try:
        data = read_document(path)
    except InputError as exc:
        if exc.line is None and path != "-" and Path(path).is_file():
            exc.line, exc.column = 1, 1  # keep the file:line:col shape tools parse
        raise
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        lc = getattr(data, "lc", None)
        line = lc.line + 1 if lc is not None and lc.line is not None else 1
        column = lc.col + 1 if lc is not None and lc.col is not None else 1
        raise InputError(
            f"a variables file must be a mapping of names to values, found {kind}",
            path=path,
            line=line,
            column=column,
        )
    if template == "retry":
        _check_failures(data, path)
    return to_plain(data)


def _check_failures(data: Mapping[str, Any], path: str) -> None:
    """``failures`` of retry variables: a list of mappings whose verdict is a failing one."""
    from dispatch_kit.readers.yamlfile import locate, to_plain

    failures = data.get("failures")
    if failures is None:
        return  # the template names the missing variable
    if not isinstance(failures, list):
        raise InputError("'failures' must be a list of the criteria that did not pass",
                         path, *locate(data, ["failures"]))
    for number, entry in enumerate(failures):
        if not isinstance(entry, Mapping):
            raise InputError(
                f"failures[{number}] must be a mapping (number, criterion, verdict, ...)",
                path, *locate(data, ["failures", number]))
        verdict = entry.get("verdict")
        if not isinstance(verdict, str) or verdict not in FAILING_VERDICTS:
            raise InputError(
                f"failures[{number}].verdict is {to_plain(verdict)!r}; expected one of "
                f"{', '.join(FAILING_VERDICTS)}",
                path, *locate(data, ["failures", number, "verdict"]))


# --------------------------------------------------------------------------- plan variables


def _shown(path: Path | str, base: Path | str, *, real_base: str | None = None) -> str:
    """``path`` relative to ``base`` when inside it (prompts stay free of machine paths).

    ``real_base`` is ``base`` already resolved (by the same call): one prompt shows several
    paths relative to one base, and resolving it once per prompt is a measurable share of
    a runner's work per task. Resolved paths are compared as strings: both are absolute
    and normalised, so a prefix ending at a separator is exactly ``relative_to``.
    """
    return _relative(realpath(path), realpath(base) if real_base is None else real_base)


def _relative(real: str, root: str) -> str:
    """The resolved path ``real`` relative to the resolved folder ``root`` if inside it."""
    if real == root:
        return "."
    if within(root, real):
        return real[len(root if root.endswith(os.sep) else root + os.sep):]
    return real


def dispatch_vars(plan: Plan, task: Task, attempt: int, base: Path, *,
                  real_base: str | None = None, mission: str | None = None,
                  ledger: Path | str | None = None) -> dict[str, Any]:
    """What the dispatch line says (``clauses/dispatch-line.md.j2``): the mission, the
    task, the ledger's 1-based attempt number and the ledger (a file relative to ``base``,
    or a database URL without its password), so the session's hooks record the dispatch
    where it was claimed. ``mission`` and ``ledger`` are those of the caller's ledger
    (``run``/``attempt start`` with ``--mission``/``--db``); by default the plan's, as
    ``ledger init`` names them."""
    from dispatch_kit.ledger.backends import redact
    from dispatch_kit.ledger.fingerprint import mission_id_for
    from dispatch_kit.ledger.location import default_db_for

    if ledger is None:
        ledger = default_db_for(plan)
    return {
        "mission": mission if mission is not None else mission_id_for(plan),
        "task": task.id,
        "attempt": attempt,
        "ledger": _shown(ledger, base, real_base=real_base) if isinstance(ledger, Path)
        else redact(ledger),
    }


def worker_vars(
    plan: Plan, task: Task, *, base: Path | None = None, attempt: int = 1,
    mission: str | None = None, ledger: Path | str | None = None,
) -> dict[str, Any]:
    """Every variable ``worker.md.j2`` needs, from a loaded plan.

    ``base`` is where the orchestrator (and so the workers it spawns) starts,
    by default the current directory: the working directory is shown relative
    to it, and the self-check command relative to the task's own folder, so a
    worker can paste either as written. ``attempt`` is the ledger's attempt
    number the dispatch line carries, ``mission`` and ``ledger`` where it was
    claimed (see :func:`dispatch_vars`).

    Every path is resolved again on each call, never cached: a prompt must show the
    folders as they are when it is rendered (see :mod:`dispatch_kit.check.confine`).
    """
    base = Path.cwd() if base is None else base
    # Each path resolved once, as strings (what plan.task_dir and Path.resolve give),
    # joined with os.path (realpath normalises the same as a Path would, for less).
    task_dir = realpath(os.path.join(plan.workspace, task.cwd))
    # The runner's base is the task folder, resolved: when it is the path just resolved
    # above, resolving it again gives itself (short of a change in between, the race
    # every check-then-use has and a second realpath in a row would not close).
    real_base = task_dir if os.fspath(base) == task_dir else realpath(base)
    plan_path = None
    if plan.path and not plan.path.startswith("<"):
        plan_path = os.path.relpath(realpath(plan.path), task_dir)
    dependencies = []
    for dep_id in task.depends_on:
        dep = plan.task(dep_id)
        dependencies.append(
            {
                "id": dep.id,
                "title": dep.title,
                "dir": os.path.relpath(realpath(os.path.join(plan.workspace, dep.cwd)), task_dir),
            }
        )
    return {
        "goal": plan.goal.strip(),
        "task_id": task.id,
        "task_title": task.title.strip(),
        "task_type": task.type,
        "task_description": (task.description or "").strip(),
        "workspace": _shown(plan.workspace, base, real_base=real_base),
        "cwd": task.cwd,
        "task_dir": _relative(task_dir, real_base),  # resolved above
        "criteria": [criterion.display() for criterion in task.exit_criteria],
        "dependencies": dependencies,
        "allow_commits": bool(plan.allow_commits),
        "timeout": task.timeout,
        "plan_path": plan_path,
        "dispatch": dispatch_vars(plan, task, attempt, base, real_base=real_base,
                                  mission=mission, ledger=ledger),
    }


def retry_vars(
    plan: Plan,
    task: Task,
    attempt: int,
    task_check: Mapping[str, Any],
    *,
    base: Path | None = None,
    worker_outcome: str | None = None,
    worker_timed_out: bool = False,
    worker: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The worker variables plus the retry context: attempt n of N and each non-passing criterion.

    ``task_check`` is one element of a check result's ``tasks`` list. Only
    criteria whose verdict is not ``pass`` reach the prompt: the worker should
    spend its retry on what failed, not re-read what worked.

    ``worker`` is what :func:`worker_vars` returned for this very attempt (same plan,
    task and base, attempt ``attempt + 1``), when the caller has just computed it to
    render the worker prompt the addendum follows; else it is computed here.
    """
    if not 1 <= attempt <= task.max_retries:
        raise InputError(
            f"--attempt {attempt} is out of range: task '{task.id}' allows retries "
            f"1 to {task.max_retries} (max_retries)",
            path=plan.path,
            line=task.line,
        )
    if task_check.get("id") != task.id:
        raise InputError(
            f"the check result entry is for task {task_check.get('id')!r}, not '{task.id}'"
        )
    criteria = task_check.get("criteria")
    if not isinstance(criteria, list) or not all(isinstance(c, Mapping) for c in criteria):
        raise InputError(f"task '{task.id}' in the check result has no list of criteria")
    failures = [
        _failure(entry, position, task)
        for position, entry in enumerate(criteria)
        if entry.get("verdict") != "pass"
    ]
    if not failures and not worker_outcome:
        raise InputError(
            f"task '{task.id}' passed every exit criterion in this check result; nothing to retry"
        )
    values = (dict(worker) if worker is not None  # retry n is attempt n+1
              else worker_vars(plan, task, base=base, attempt=attempt + 1))
    values.update(
        attempt=attempt,
        max_retries=task.max_retries,
        criteria_total=len(criteria),
        failures=failures,
        worker_outcome=worker_outcome,
        worker_timed_out=worker_timed_out,
    )
    return values


def _failure(entry: Mapping[str, Any], position: int, task: Task) -> dict[str, Any]:
    verdict = entry.get("verdict")
    if verdict not in FAILING_VERDICTS:
        raise InputError(
            f"criterion {position} of task '{task.id}' has verdict {verdict!r}; expected one of "
            "pass, fail, timeout, error"
        )
    index = entry.get("index", position)
    index = index if isinstance(index, int) else position
    criterion = entry.get("criterion")
    if not isinstance(criterion, str) or not criterion:
        criterion = task.exit_criteria[index].display() if index < len(task.exit_criteria) else "?"
    exit_code = entry.get("exit_code")
    took = entry.get("duration")
    return {
        "number": index + 1,
        "criterion": criterion,
        "verdict": verdict,
        "exit_code": exit_code if isinstance(exit_code, int) else None,
        "duration": float(took) if isinstance(took, (int, float)) else None,
        "message": str(entry.get("message") or "").strip(),
        "stdout_tail": _tail(entry.get("stdout_tail")),
        "stderr_tail": _tail(entry.get("stderr_tail")),
    }


def _tail(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-TAIL_LINES:])


# --------------------------------------------------------------------------- check results


def load_check(path: str) -> dict[str, Any]:
    """A check result document (``dispatch-kit check --format json``) read from ``path``.

    ``ledger record`` turns it into a verdict and ``render retry`` into a prompt,
    so it is held to its own schema (``schemas/check-result.schema.json``) first:
    the string "false" as ``passed`` must not verify a task, an ``index`` of -7
    must not pick a criterion from the end. Errors point at ``file:line:col``.
    """
    from dispatch_kit.readers.json_positions import load_json
    from dispatch_kit.readers.yamlfile import locate, read_text, to_plain

    text = read_text(path)
    doc = load_json(text, path)
    data = to_plain(doc)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise InputError(
            "not a check result: expected a JSON object with a 'tasks' list "
            "(from `dispatch-kit check PLAN --format json`)",
            path=path,
            line=1,
            column=1,
        )
    if data.get("version") != 1:
        raise InputError(
            f"unsupported check result version {data.get('version')!r}; expected 1",
            path,
            *locate(doc, ["version"]),
        )
    error = _non_finite(data, []) or _check_schema_error(data)
    if error is not None:
        keys, message = error
        where = "/".join(str(k) for k in keys)
        raise InputError(
            f"not a check result: {where + ': ' if where else ''}{message}", path,
            *locate(doc, keys),
        )
    return data


def _non_finite(data: Any, keys: list[Any]) -> tuple[list[Any], str] | None:
    """(path, message) of a NaN or infinity (``1e400``, ``Infinity``): no check prints one."""
    import math

    if isinstance(data, float) and not math.isfinite(data):
        return keys, f"{data!r} is not a finite number"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(
        data, list) else ()
    for key, value in items:
        found = _non_finite(value, [*keys, key])
        if found is not None:
            return found
    return None


def _check_schema_error(data: Any) -> tuple[list[Any], str] | None:
    """(path, message) of the first way ``data`` breaks the check result schema, or None."""
    from importlib import resources

    from jsonschema import Draft202012Validator

    schema = json.loads(
        resources.files("dispatch_kit").joinpath("schemas/check-result.schema.json").read_text()
    )
    errors = sorted(Draft202012Validator(schema).iter_errors(data),
                    key=lambda e: [str(k) for k in e.absolute_path])
    if not errors:
        return None
    first = errors[0]
    message = first.message
    if len(message) > 200:
        message = message[:200] + "..."
    return list(first.absolute_path), message


def select_task_check(document: Mapping[str, Any], task_id: str, path: str) -> dict[str, Any]:
    """The entry of ``document['tasks']`` for ``task_id``; a missing one says how to produce it."""
    for entry in document["tasks"]:
        if isinstance(entry, dict) and entry.get("id") == task_id:
            return entry
    listed = [str(e.get("id")) for e in document["tasks"] if isinstance(e, dict)]
    raise InputError(
        f"no result for task '{task_id}' (it has: {', '.join(listed) or 'none'}); "
        f"run `dispatch-kit check PLAN --task {task_id} --format json`",
        path=path,
        line=1,
    )
