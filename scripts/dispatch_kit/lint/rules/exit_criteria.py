"""DK2xx: every worker knows where it works and how "done" is checked by a machine.

A worker starts with no memory of the mission: its prompt must name its
working directory and exit criteria that a shell can verify. Vague criteria
("the code is clean") cannot be checked, so the orchestrator can neither
approve nor retry with evidence. Missions stay small: at most six tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from dispatch_kit.lint.document import Document, Region
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BLOCK, family, section_end

MAX_TASKS = 6
_LABEL = lazy(
    r"^[ \t>]*(?P<heading>#{1,6}[ \t]*)?(?:\d{1,3}[.)][ \t]*)?[*_]{0,2}"
    r"(?:exit[ -]criteri(?:a|on)|done when|acceptance criteria|success criteria|definition of done)"
    r"\b[*_]{0,2}(?P<rest>[^\n]*)$",
    re.I | re.M,
)
_ITEM = lazy(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+(?P<body>[^\n]*)$", re.M)
_CODE = lazy(r"^[ \t]*(?:`{3}|~{3})", re.M)
_STRUCTURED = lazy(r"^(?:file_exists|contains|min_bytes|run|exists|command|cmd|shell)[ \t]*:", re.I)
_BACKTICKS = lazy(r"`+")
_WORKDIR = lazy(
    r"^[^\w\n]{0,8}(?:working[ -]dir(?:ectory)?|cwd|workdir)\b[^:\n]{0,30}:[ \t]*\S"
    r"|\b(?:working[ -]dir(?:ectory)?|cwd|workdir)(?:[ \t]+is)?[ \t]*(?:[:=][ \t]*)?"
    r"[`'\"][^`'\"\n]+[`'\"]"
    r"|\b(?:work|run|operate|stay)\w*[ \t]+(?:only[ \t]+)?(?:in|inside|within|from|under)[ \t]+"
    r"[`'\"][^`'\"\n]+[`'\"]"
    r"|(?:^|[`;&][ \t]*)cd[ \t]+[`'\"]?[\w./~-]+"
    # other labels and phrasings: "Directory: apps/web", "ROOT: internal/x", "Work from:
    # [directory]", "Work in `docs/site`", "You're in services/api"
    r"|\b(?:directory|root|folder|workspace)[ \t]*:[ \t]*[`'\"\[{$~./\w]"
    r"|\bwork(?:ing)?[ \t]+(?:in|from|inside)[ \t]*:?[ \t]*(?:[`'\"\[]|\{\{|[\w.~-]+/)"
    r"|\byou(?:'re|\u2019re|[ \t]+are)[ \t]+in[ \t]+[`'\"]?[\w.~-]+/",
    re.I | re.M,
)
# Ways to say "done means these commands pass" other than the pack's "Exit criteria"
# label, read only in prompts whose kind was inferred: "Done when", "Finished means:",
# "ACCEPTANCE (each must exit 0):", "### Must pass", "## Check".
_LOOSE_LABEL = lazy(
    r"^[ \t>]*(?:#{1,6}[ \t]*)?[*_]{0,2}(?:(?:it'?s[ \t]+|it[ \t]+is[ \t]+)?done[ \t]+when"
    r"|finished[ \t]+(?:means|when)|acceptance|must[ \t]+pass|success[ \t]+means"
    r"|(?:checks?|verification)[*_]{0,2}[ \t]*:?[ \t]*$"
    # any short line ending in a colon that says how done is checked: "Verified by (all
    # exit 0):", "These must pass:", "Checked with:"
    r"|[^\n]{0,60}\b(?:exits?[ \t]+0|verif\w*|checked|check[ \t]+with|pass(?:es)?|succeed\w*)\b"
    r"[^\n]{0,40}:[ \t]*$)",
    re.I | re.M,
)
_COMMAND_LINE = lazy(r"^(?:[ \t]{2,}|\t)\S|`", re.M)
_TASK_LABEL = lazy(
    r"^[ \t]{0,3}(?:#{1,6}[ \t]*|(?:[-*+]|\d{1,3}[.)])[ \t]+)?[*_]{0,2}task[ \t]*(?:#?\d+|[A-Z])?"
    r"[*_]{0,2}[ \t]*[:.)\u2013\u2014-]",
    re.I | re.M,
)
_PLAN_TASK_ID = lazy(r"^[ \t]*-[ \t]+id[ \t]*:", re.M)
_TASKS_HEADING = lazy(
    r"^[ \t]{0,3}(?:#{1,6}[ \t]*)?[*_]{0,2}(?:the[ \t]+)?tasks\b[^\n]*$", re.I | re.M
)
_TOP_ITEM = lazy(r"^(?:[-*+]|\d{1,3}[.)])[ \t]+\S", re.M)
# A line that introduces a list of tasks: 'Break "launch billing v2" into tasks for the
# team:', "Produce the task list as this table:" (found by _task_intros).
_TASKS_WORD = lazy(r"\btask(?:s|[ \t]+list)\b")
_INTRO_MAX = 400
_LINE_END_COLON = lazy(r":[ \t]*(?:\n|$)")
_ROW = lazy(r"^[ \t]{0,3}\|[^\n]*$", re.M)
_SEPARATOR_ROW = lazy(r"[ \t]{0,3}\|[ \t:|-]*$")
_NON_BLANK = lazy(r"\S")
# "] load FILE ... then:" as two linear searches; one pattern (``\]\s*load\s+\S+.*\bthen\s*:``)
# backtracked cubically on "[Execute] ] load aaaa..." (40 KB: 25 s).
_COMPOSITE_LOAD = lazy(r"\]\s*load\s+\S", re.I)
_COMPOSITE_THEN = lazy(r"\bthen\s*:", re.I)
_COMPOSITE_CHAIN = lazy(r"\bcommit\s+[`'\"]?[0-9a-f]{7,40}\b", re.I)


def is_composite(region: Region) -> bool:
    """A composite Bash-chain dispatch: its hand-over is a commit, not a task folder.

    Its first line says so: ``Load FILE. Then: ...`` (the thin-wrapper shape)
    or names the commit it is chained on (``... on commit 4e1d2c9``).
    """
    first = region.first_line
    return _loads_then(first) or bool(_COMPOSITE_CHAIN.search(first))


def _loads_then(text: str) -> bool:
    """Whether ``] load X`` is followed, later on its line, by ``then:``."""
    then: re.Match[str] | None = None
    for load in _COMPOSITE_LOAD.finditer(text):
        if then is None or then.start() < load.end():
            then = _COMPOSITE_THEN.search(text, load.end())
            if then is None:
                return False
        line_end = text.find("\n", load.end())
        if line_end < 0 or then.start() < line_end:
            return True
    return False


def _criteria_section(region: Region) -> tuple[re.Match[str], int] | None:
    """The exit-criteria label and where its section ends (shared by DK201 and DK202)."""
    cache = region.doc.cache
    if "criteria" not in cache:
        match = _LABEL.search(region.text)
        cache["criteria"] = (
            None
            if match is None
            else (match, section_end(region.text, match.end(), bool(match.group("heading"))))
        )
    return cache["criteria"]


def _loose_criteria(region: Region) -> bool:
    """Whether an inferred prompt says in its own words which commands mean done."""
    text = region.text
    for label in _LOOSE_LABEL.finditer(text):
        line_end = text.find("\n", label.end())
        line_end = len(text) if line_end < 0 else line_end
        end = section_end(text, line_end, label.group(0).lstrip(" \t>").startswith("#"))
        body = text[label.end() : end]
        if _ITEM.search(body) or _CODE.search(body) or _COMMAND_LINE.search(body):
            return True
    return False


def _check_missing(region: Region) -> Iterator[Hit]:
    if is_composite(region):
        return
    found = _criteria_section(region)
    if found is None:
        if not (region.inferred and _loose_criteria(region)):
            yield region.anchor()
        return
    label, end = found
    body = region.text[label.end() : end]
    rest = label.group("rest").strip(" \t:*_")
    has_content = (
        bool(rest and not rest.startswith("("))
        or _ITEM.search(body) is not None
        or _CODE.search(body) is not None
        or region.has_expression_between(label.end(), end)
    )
    if not has_content:
        yield region.at(
            label.start(),
            "the exit criteria section lists no criteria; add one "
            "shell command per criterion that exits 0 when the task is done",
        )


_CHECKBOX = lazy(r"^\[[ xX]\][ \t]*")


@lru_cache(maxsize=4096)
def vague_reason(item: str) -> str | None:
    """Why a listed criterion is not machine-checkable, or None when it is.

    The judgement is the plan validator's (:mod:`dispatch_kit.plan.vague`),
    so a prompt and a plan file accept exactly the same criteria. A code span
    in the item is the command; a lead-in ending in ":" introduces a code block.
    """
    text = _CHECKBOX.sub("", item.strip())
    if not text or text.endswith(":") or set(text) <= set("0 .:,;-`"):
        return None
    if _STRUCTURED.match(text):
        return None
    from dispatch_kit.plan.vague import vague_reason as shell_vague_reason

    span = _code_span(text)
    command = span if span is not None else text
    if _surely_runnable(command):
        return None  # what the validator would say, without its shell tokenizer
    reason = shell_vague_reason(command)
    if reason is None and not span:
        reason = _sentence_reason(text)
    return reason


def _code_span(text: str) -> str | None:
    """The first code span's text: a run of backticks, then text, then a run at least as long.

    Linear: each run's closer is the next run at least as long (a stack, right to
    left). The regex this replaced, ``(`+)(.+?)\\1``, backtracked cubically on a
    line of backticks (24 KB took 162 s in the hook); where it differed (a run
    closed by a shorter run, a closer inside its opener) no one writes a span.
    """
    if "`" not in text:
        return None
    lines = text.split("\n")
    for line in lines:
        runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(line)]
        closer: list[int | None] = [None] * len(runs)
        stack: list[int] = []  # runs to the right, each shorter than the one below it
        for i in range(len(runs) - 1, -1, -1):
            length = runs[i][1] - runs[i][0]
            while stack and runs[stack[-1]][1] - runs[stack[-1]][0] < length:
                stack.pop()
            closer[i] = stack[-1] if stack else None
            stack.append(i)
        for i, found in enumerate(closer):
            if found is not None:
                return line[runs[i][1] : runs[found][0]]
    return None


# Characters that make shell tokenizing differ from splitting at blanks:
# escapes, comments, operators, and blanks other than space, tab, CR and LF.
# Quotes are handled apart (see _balanced).
_UNSPLIT = frozenset("\\#();<>|&\x0b\x0c\x1c\x1d\x1e\x1f")
_QUOTES = frozenset("'\"")
# Any of these in a word means it is no plain English word or number.
_SHELLISH = frozenset("/=$*:@%+~[]{}")
_ASSIGNMENT = lazy(r"[A-Za-z_][A-Za-z0-9_]*=")
_PROGRAM = lazy(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _surely_runnable(command: str) -> bool:
    """True only where :func:`dispatch_kit.plan.vague.vague_reason` says None.

    Most listed criteria are ordinary commands (``python3 -m pytest -q``). The
    validator proves that by tokenizing each with :mod:`shlex`, which is most
    of the cost of this rule over a thousand prompts. Without quotes, escapes,
    comments or operators the tokens are the blank-separated words, so the
    validator's checks can be read off them here: a word that is no plain
    word (it has an option dash, a path, an ``=``, an inner dot) rules out
    prose, and then the first word after assignments must be a program name,
    a path, a variable or a shell word. Anything less clear returns False and
    the validator decides.
    """
    stripped = command.strip()
    if not stripped or stripped[0] == "#" or not stripped.isascii():
        return False
    if not _UNSPLIT.isdisjoint(stripped):
        return False
    quoted = not _QUOTES.isdisjoint(stripped)
    if quoted and not _balanced(stripped):
        return False  # the tokenizer's "No closing quotation": the validator words it
    words = stripped.split()
    if not any(
        w[0] == "-" or "." in w[:-1] or '"' in w or not _SHELLISH.isdisjoint(w) for w in words
    ):
        return False  # every word may be plain English: the validator's prose test decides
    from dispatch_kit.plan.vague import SHELL_WORDS

    index = 0
    while index < len(words) and (_ASSIGNMENT.match(words[index]) or words[index] in ("!", "{")):
        index += 1
    if quoted and not _QUOTES.isdisjoint("".join(words[: index + 1])):
        return False  # a quote before the program: its tokens are not the blank-split words
    if index >= len(words):
        return True
    first = words[index]
    return (
        first in SHELL_WORDS
        or "/" in first
        or first.startswith("$")
        or _PROGRAM.fullmatch(first) is not None
    )


def _balanced(text: str) -> bool:
    """Whether every quote in ``text`` (which has no backslash) is closed.

    Without escapes, POSIX shell quoting is this simple: a single or double
    quote opens a quoted stretch that only the same character closes. Quotes
    are common in exit criteria (``grep -q "name" file``), and the only error
    the tokenizer can then raise is an unclosed one. Quotes after the program
    name do not change which word is the program.
    """
    open_quote = ""
    for char in text:
        if open_quote:
            if char == open_quote:
                open_quote = ""
        elif char in _QUOTES:
            open_quote = char
    return not open_quote


def _sentence_reason(text: str) -> str | None:
    """A capitalised sentence full of English function words is prose, whatever else it holds."""
    from dispatch_kit.plan.vague import FUNCTION_WORDS, OUTCOME_WORDS

    words = [w.strip(".,;:!?").lower() for w in text.split()]
    if not text[:1].isupper() or not text.rstrip().endswith((".", "!")) or len(words) < 4:
        return None
    english = sum(1 for w in words if w in FUNCTION_WORDS or w in OUTCOME_WORDS)
    return "it reads like a sentence" if english >= 2 else None


def _check_prose(region: Region) -> Iterator[Hit]:
    if is_composite(region):
        return
    found = _criteria_section(region)
    if found is None:
        return
    label, end = found
    for item in _ITEM.finditer(region.text, label.end(), end):
        reason = vague_reason(item.group("body"))
        if reason:
            yield region.at(
                item.start("body"),
                f"this exit criterion is not machine-checkable: {reason}; write a shell "
                "command that exits 0 on success, or a structured check",
            )


_WORKDIR_WORDS = (
    "working dir",
    "working-dir",
    "cwd",
    "workdir",
    "work",
    "run",
    "operate",
    "stay",
    "cd ",
    "director",
    "root",
    "folder",
    "workspace",
    "you're in",
    "you are in",
)


def _check_workdir(region: Region) -> Iterator[Hit]:
    if is_composite(region):
        return
    lower = region.lower
    start = lower.find("working dir")
    if start >= 0 and _WORKDIR.search(region.text, max(0, lower.rfind("\n", 0, start))):
        return  # the usual "Working directory: PATH" line, found without scanning the rest
    if not region.mentions(_WORKDIR_WORDS) or _WORKDIR.search(region.text) is None:
        yield region.anchor()


def _task_lists(text: str) -> Iterator[list[re.Match[str]]]:
    """Each way a prompt can list a mission's tasks: Task N labels, plan ids, a Tasks section."""
    lower = text.lower()
    if lower.count("task") > MAX_TASKS:
        yield list(_TASK_LABEL.finditer(text))
    if lower.count("id:") > MAX_TASKS:
        yield list(_PLAN_TASK_ID.finditer(text))
    if "task" not in lower:
        return
    if "tasks" in lower:
        for heading in _TASKS_HEADING.finditer(text):
            end = section_end(text, heading.end(), heading.group(0).lstrip().startswith("#"))
            yield list(_TOP_ITEM.finditer(text, heading.end(), end))
    if "tasks" in lower or "task list" in lower:
        for intro_end in _task_intros(lower):
            yield _introduced(text, intro_end)


def _task_intros(lower: str) -> Iterator[int]:
    """Where each line that introduces tasks ends: it names tasks and ends in a colon.

    Found from the lines that end in a colon (one scan in C; a prompt has a few),
    not by a pattern tried at every line start.
    """
    for colon in _LINE_END_COLON.finditer(lower):
        end = colon.end() - 1 if colon.group(0).endswith("\n") else colon.end()
        start = lower.rfind("\n", 0, colon.start()) + 1
        if (
            end - start <= _INTRO_MAX
            and lower.find("task", start, end) >= 0
            and _TASKS_WORD.search(lower, start, end)
        ):
            yield end


def _introduced(text: str, after: int) -> list[re.Match[str]]:
    """The items (list items, or a table's rows under its header) that follow a line
    introducing tasks, blank lines between them allowed."""
    first = _NON_BLANK.search(text, after)
    if first is None:
        return []
    start = text.rfind("\n", 0, first.start()) + 1
    end = section_end(text, start, False)
    items = list(_TOP_ITEM.finditer(text, start, end))
    if items:
        return items
    rows = [row for row in _ROW.finditer(text, start, end) if not _SEPARATOR_ROW.fullmatch(row[0])]
    return rows[1:]  # the first row is the header


def _check_task_count(region: Region) -> Iterator[Hit]:
    for matches in _task_lists(region.text):
        if len(matches) > MAX_TASKS:
            yield region.at(
                matches[MAX_TASKS].start(),
                f"this mission has {len(matches)} tasks; split it into missions of at most "
                f"{MAX_TASKS} tasks",
            )
            return


def _check_plan(doc: Document) -> Iterator[Hit]:
    """Delegate to the plan validator (``dispatch_kit.plan.load``) when it is installed."""
    try:
        from dispatch_kit.plan.load import validate_plan
    except ImportError:  # an older install without the plan module: nothing to delegate to
        return
    if doc.fs_path is None:
        return
    _, errors = validate_plan(str(doc.fs_path), max_tasks=MAX_TASKS)
    for error in errors:
        yield (error.line or 1), (error.column or 1), error.message


_WORKER_HEAD = """[Execute] Task `report`: summarise the benchmark results

Working directory: bench/out

Read results.csv and write summary.md with one table per suite.
"""
_CHECKED = """
## Exit criteria
1. `test -f summary.md`
2. `grep -q '^| suite' summary.md`
"""

# The worker rules' reach and the worker prompt that passes all of them, stated once.
_worker_rule = family(
    applies_to="[Execute] worker prompts and templates",
    kinds=frozenset({"execute"}),
    good=Example(_WORKER_HEAD + _CHECKED + "\n" + BLOCK),
)

MISSING_CRITERIA = _worker_rule(
    code="DK201",
    name="missing-exit-criteria",
    severity="error",
    message="add an Exit criteria section: shell commands that exit 0 when the task is done",
    rationale="""\
Exit criteria are the only quality gate of a workspace dispatch: the worker
runs them before it reports, the orchestrator runs them again and approves,
retries with the failing output, or fails the task. Without them "done" is
whatever the worker says. Composite Bash-chain dispatches (opening with
`Load FILE. Then:` or chained on a named commit) hand over a commit instead
and are exempt. In an unmarked prompt read as a work order, other labels
followed by commands count too ("Done when:", "Finished means:",
"Acceptance:", "Must pass", a "Check" heading).""",
    bad=Example(_WORKER_HEAD),
    check=_check_missing,
)

PROSE_CRITERION = _worker_rule(
    code="DK202",
    name="prose-exit-criterion",
    severity="error",
    message="make this criterion machine-checkable: a shell command (`test -f out.md`) or a "
    "structured check (file_exists, contains, min_bytes, run)",
    rationale="""\
"The summary is clear and complete" cannot be run, so nobody can tell whether
it passed: the worker declares victory and a retry has no error to show.
Every criterion must be a command that exits 0 on success (`test -f`,
`grep -q`, a test runner) or a structured check that needs no shell.""",
    applies_to="the Exit criteria section of [Execute] worker prompts",
    bad=Example(
        _WORKER_HEAD
        + """
## Exit criteria
1. The summary is clear and covers every suite.

"""
        + BLOCK
    ),
    check=_check_prose,
)

MISSING_WORKDIR = _worker_rule(
    code="DK203",
    name="missing-working-directory",
    severity="error",
    message="name the working directory (Working directory: PATH); the worker runs and is "
    "checked there",
    rationale="""\
Workers share no state and start with no memory of the mission. Without a
working directory a worker guesses where to write, its exit criteria run in
the wrong folder, and two workers can overwrite each other. The orchestrator
runs the criteria in that same directory. Any clear wording counts:
`Working directory: PATH`, `cwd: PATH`, `Directory: PATH`, "work in `PATH`",
"you're in PATH", or a `cd PATH` step.""",
    bad=Example(
        """[Execute] Task `report`: summarise the benchmark results

Read results.csv and write summary.md with one table per suite.
"""
        + _CHECKED
        + "\n"
        + BLOCK
    ),
    check=_check_workdir,
)

_SEVEN = "".join(f"## Task {n}: step {n}\nDo step {n}.\n\n" for n in range(1, 8))
_SIX = "".join(f"## Task {n}: step {n}\nDo step {n}.\n\n" for n in range(1, 7))

TOO_MANY_TASKS = Rule(
    code="DK204",
    name="too-many-tasks",
    severity="error",
    message=f"keep a mission to at most {MAX_TASKS} tasks; split the rest into a second mission",
    rationale="""\
Long plans fail in the middle: dependencies multiply, retries pile up and the
orchestrator's own context fills with bookkeeping. Two to six focused tasks,
each with its own exit criteria, keep a mission checkable; more work is a
second mission planned after the first one lands. Tasks are counted as
`Task N` labels, plan ids, the items under a Tasks heading, and the list
items or table rows under a line that introduces tasks ("Break it into
tasks:").""",
    applies_to="[Plan], [Execute] and other dispatch prompts that list tasks",
    bad=Example("[Plan] Lay out the migration as tasks.\n\n" + _SEVEN + BLOCK),
    good=Example("[Plan] Lay out the migration as tasks.\n\n" + _SIX + BLOCK),
    kinds=frozenset({"execute", "plan", "dispatch"}),
    check=_check_task_count,
)

INVALID_PLAN = Rule(
    code="DK205",
    name="invalid-plan",
    severity="error",
    message="fix the plan file (`dispatch-kit plan validate PLAN` explains each error)",
    rationale="""\
Plan files are linted by the same validator `dispatch-kit plan validate` runs,
so CI and pre-commit catch a plan with a prose criterion, a missing working
directory, a dependency cycle or more than six tasks before an orchestrator
loads it.""",
    applies_to="plan files (plan.yaml, *.plan.yaml)",
    bad=Example(
        """goal: Summarise the benchmark results
workspace: .
tasks:
  - id: summary
    title: Write the summary
    type: research
    cwd: out
    description: Read results.csv and write summary.md.
    exit_criteria:
      - file_exists: summary.md
""",
        path="bench.plan.yaml",
    ),
    good=Example(
        """goal: Summarise the benchmark results
workspace: .
tasks:
  - id: summary
    title: Write the summary
    type: research
    cwd: out
    description: Read results.csv and write summary.md.
    exit_criteria:
      - file_exists: summary.md
  - id: check
    title: Check the summary
    type: review
    cwd: review
    depends_on: [summary]
    description: Compare out/summary.md with results.csv and write verdict.md.
    exit_criteria:
      - "grep -qx 'VERDICT: PASS' verdict.md"
""",
        path="bench.plan.yaml",
    ),
    scope="file",
    kinds=frozenset({"plan"}),
    check=_check_plan,
)

RULES = (MISSING_CRITERIA, PROSE_CRITERION, MISSING_WORKDIR, TOO_MANY_TASKS, INVALID_PLAN)
