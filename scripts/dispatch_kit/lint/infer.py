"""What an unmarked prompt is, read from its content: the kind, and how sure the reading is.

Most dispatch prompts in the wild carry none of the pack's markers (``[Execute]``,
``[Plan]``, ...), so the rules that matter most would never run on them. This
module reads a prompt the way a reviewer would, from features that hold across
styles rather than from any one project's wording:

- retry: retry vocabulary (a previous attempt, "try again", "attempt 2") at the top;
- executor: an instruction to start workers, plus a schedule (cron, "every 30
  minutes", a timeout) or a queue of work items (issues, tickets, labels, rows);
- plan: planning vocabulary (break into tasks, a task list, a roadmap, an
  architecture to design) or an instruction to dispatch several agents;
- inspect: read-only vocabulary ("read-only", "don't change anything") or
  review verbs (review, audit, analyse, verify) with no request to change code;
- execute: a request, in imperative position, to change code or files.

Each answer carries a confidence. "sure" is kept for shapes no other kind has
(the pack's own section labels, a retry header on the first line, an executor's
claim + spawn + ``NO_REPLY``); everything else is "likely". The pre-dispatch
hook downgrades errors that rest on a likely kind to warnings, since a false
block stops the user's session (see :mod:`dispatch_kit.lint.engine`).

Every pattern here is linear in its input: alternations of literal words and
character-class gaps of bounded length, with no nested quantifiers over
overlapping classes. Only the first :data:`SCAN_LIMIT` characters are read:
what a prompt is shows in its opening pages.
"""

from __future__ import annotations

import re

from dispatch_kit.lint.patterns import lazy

SURE = "sure"
LIKELY = "likely"
SCAN_LIMIT = 20_000
RETRY_WINDOW = 320

# -- sure shapes (the pack's own labels) ------------------------------------------------
_RETRY_START = lazy(r"\W{0,12}(?:previous attempt|retry\b|attempt \d)", re.I)
_WORKDIR_LABEL = lazy(r"^\W{0,8}(?:working[ -]dir(?:ectory)?|cwd)\b[^:\n]{0,20}:", re.I | re.M)
_CRITERIA_LABEL = lazy(r"^\W{0,8}exit[ -]criteri", re.I | re.M)
_TASK_LABEL = lazy(r"^\W{0,8}(?:your )?task\b", re.I | re.M)
_CLAIM = lazy(r"\bclaim", re.I)
_SPAWN = lazy(r"\b(?:spawn|dispatch)", re.I)

# -- features of likely kinds (matched on lower-cased text) ------------------------------
_RETRY_CUE = lazy(
    r"\b(?:previous|last|earlier|first) (?:attempt|run|try|version|pass)\b"
    r"|\btry (?:it |this )?again\b|\banother (?:go|attempt|try)\b|\bonce more\b"
    r"|\bre-?(?:running|dispatching|trying)\b|\bsame instructions\b|\brecover\w* from\b"
    r"|\bkeep going\b|\bwithout getting anywhere\b|\bdid(?:n't| not) work\b"
    r"|\b(?:retry|attempt)[ \t]+(?:#|no\.?[ \t]*)?(?:\d|\{|\$|n\b)|\bretry attempt\b"
    r"|\bthis is (?:a |the |your )?(?:retry|\w+ attempt)\b|\byou were working on\b"
)
_SPAWN_CUE = lazy(
    r"\b(?:spawn|dispatch|launch|start|spin(?:s|ning)? up|kick(?:s|ing)? off|hand|assign|delegat)"
    r"\w*\b[^.\n]{0,80}?\b(?:(?:sub-?)?agents?|workers?|sessions?)\b"
    r"|\bsessions_spawn\b"
)
_SCHEDULE_CUE = lazy(
    r"\bcron\b|\bscheduled?\b|\bschedule\b|\bevery[ \t]+(?:\d+|\w+)[ \t]+(?:min\w*|hours?|days?)\b"
    r"|\bhourly\b|\bnightly\b|\bdaily\b|\btimeoutseconds\b|\bexecutor\b|\bdispatcher\b"
    r"|\bwatcher\b|\btick\b|\bno_reply\b"
)
_QUEUE_CUE = lazy(
    r"\bqueued?\b|\bissues?\b|\btickets?\b|\bpull requests?\b|\bprs?\b|\blabel(?:l?ed|s)?\b"
    r"|\bboard\b|\bbacklog\b|\binbox\b|\bcolumn\b|\bmilestones?\b|\bthreads\b|\bstories\b"
    r"|\bwork items?\b"
)
_PLAN_CUE = lazy(
    r"\bbreak\b[^.\n]{0,80}?\binto(?: \w+){0,2}? (?:tasks|subtasks|steps|missions)\b"
    r"|\btask list\b|\bplanner\b|\broadmap\b|\bdecompose\b"
    r"|\bplan (?:the|a|an|how|out)\b"
    r"|\bdesign (?:the|a|an|our|your|its)(?: [\w-]+){0,4}? (?:architecture|system)\b"
    r"|\bdesign system improvements\b"
    r"|\b(?:coordinat|delegat)\w*\b[^.\n]{0,60}?\b(?:sub-?agents?|agents|workers)\b"
    r"|\b(?:write|produce|create)(?: \w+){0,3}? tasks\b"
)
# Several agents started by this prompt, in one of the ways people say it.
_ORCHESTRATE = lazy(
    r"\b(?:dispatch|spawn|kick|launch|start|fan)\w*\b[^.\n]{0,60}?\b"
    r"(?:in parallel|in the background|at the same time|concurrently|in waves|one per|"
    r"chained|both agents|each one|for each)\b"
    r"|\b(?:dispatch|kick off|launch|start)\b[^.\n]{0,40}?\b(?:agents|reviewers|editors?|"
    r"(?:the|a) [\w-]+ agent)\b"
)
_READ_ONLY = lazy(
    r"\bread-only\b|\bread only\b"
    r"|\b(?:do not|don't|never|without)[ \t]+(?:change|modify|mutate|edit|touch|write)\w*[ \t]+"
    r"(?:anything|any code|code|the code|files|any files|the (?:working )?tree|the checkout)\b"
)
# The verb that opens a clause: after a line start, a list mark, a sentence end
# or a comma; after a lead-in such as "please" or "then".
_LEAD = lazy(
    r"(?:^|[.!?;]\s|,[ \t]|\band[ \t])[ \t>*_#-]*(?:\d{1,3}[.)][ \t]*)?"
    r"(?:(?:please|then|also|first|now|just|and|so)[ \t]+){0,2}"
    r"(?:(?:you|we)[ \t]+(?:should|must|need[ \t]+to|have[ \t]+to|will|are[ \t]+to)[ \t]+"
    r"|i[ \t]+(?:need|want)[ \t]+you[ \t]+to[ \t]+|(?:your|the)[ \t]+(?:task|job|goal)[ \t]+is"
    r"[ \t]+to[ \t]+|make[ \t]+sure[ \t]+to[ \t]+|remember[ \t]+to[ \t]+|go[ \t]+ahead[ \t]+and"
    r"[ \t]+)?"
    r"(?P<verb>[a-z][a-z-]{1,15})\b"
    r"(?=(?P<rest>(?:[^\n.;:,]|\.(?=\S)){0,60})(?P<end>[:,.;]|\n|$)?)",
    re.M,
)
_CHANGE_STRONG = frozenset(
    """implement refactor rename migrate bump regenerate silence create write modify edit
    delete remove replace generate rewrite""".split()
)
# Verbs that also start noun phrases ("Change type classification", "Commit structure",
# "Fix design:"): they count as a request only before a determiner, a pronoun, a code
# span or a path, or at the end of their clause ("commit and push", "then commit.").
_CHANGE_WEAK = frozenset(
    """fix change update add make build set apply configure deploy commit push port upgrade
    convert install extract optimize optimise""".split()
)
_OBJECT_START = lazy(
    r"[*_]{0,2}(?:[ \t]*$|[ \t]+(?:the|a|an|all|every|each|this|that|these|those|its|"
    r"their|your|it|them|one|both|unit|new|missing|any|input|code|tests?|and|everything)\b"
    r"|[ \t]+[`'\"]"
    r"|[ \t]+[\w.-]+/)"
)
# Words that make the rest of a clause a question or a description, not a request:
# "tell me whether we should commit and push", "a prompt that tells a worker to fix it".
_SUBORDINATE = lazy(r"\b(?:whether|if|how|why|what|which|that|who|when|where|until|while)\b")
_CLAUSE_START = lazy(r"[.!?;:\n](?=[^.!?;:\n]*$)")
SUBORDINATE_REACH = 200
# Verbs whose object may be the reply itself: "write your findings as a document".
_DOCUMENT_VERBS = frozenset("write create generate produce draft compose prepare provide".split())
_REPORT_OBJECT = lazy(
    r"\b(?:report|findings|review|analysis|summary|document|categori[sz]ation|answer|graph|"
    r"diagram|design|plan|assessment|notes|list|table|verdict|recommendations?|message|"
    r"output)\b"
)
# A file the clause writes to: "write the findings to notes/findings.md" changes the tree.
_PATH = lazy(
    r"(?:\.{1,2}|~)/\w|[\w-]/[\w./-]{0,80}\.\w{1,5}\b"
    r"|\b[\w-]+\.(?:md|txt|json|ya?ml|csv|py|ts|js|go|rs|sql|toml)\b"
)
# A line that starts a block of its own: a list item, a heading, a table row, a fence.
_BLOCK_START = lazy(r"[ \t]*(?:[-*+][ \t]|\d{1,3}[.)]|#|\||`{3}|~{3}|<)")
_INSPECT_VERBS = frozenset(
    """review re-review audit analyze analyse assess evaluate inspect verify check investigate
    survey research find list identify examine compare summarize summarise explain read look
    determine confirm""".split()
)
_NEUTRAL_INSPECT = frozenset("perform execute conduct run do".split())
_INSPECT_OBJECT = lazy(r"\b(?:review|audit|analysis|assessment|scan|survey|inspection)\b")


def infer(text: str, first_line: str) -> tuple[str, str] | None:
    """(kind, SURE or LIKELY) from content alone, or None when nothing says what it is."""
    if _RETRY_START.match(first_line):
        return "retry", SURE
    if _WORKDIR_LABEL.search(text) and _CRITERIA_LABEL.search(text) and _TASK_LABEL.search(text):
        return "execute", SURE
    if "NO_REPLY" in text and _CLAIM.search(text) and _SPAWN.search(text):
        return "executor", SURE
    kind = _likely(_unwrapped(text[:SCAN_LIMIT].lower().replace("\u2019", "'")))
    return (kind, LIKELY) if kind else None


def _likely(lower: str) -> str | None:
    top = lower[:RETRY_WINDOW]
    if _RETRY_CUE.search(top):
        return "retry"
    spawns = _SPAWN_CUE.search(lower) is not None
    if spawns and (_SCHEDULE_CUE.search(lower) or _QUEUE_CUE.search(lower)):
        return "executor"
    read_only = _READ_ONLY.search(lower) is not None
    change, inspect = _lead_verbs(lower)
    if _PLAN_CUE.search(lower):
        return "plan"
    if _ORCHESTRATE.search(lower):
        return "inspect" if read_only or (inspect and not change) else "plan"
    if read_only:
        return "inspect"
    if change:
        return "execute"
    if inspect:
        return "inspect"
    return None


def _subordinate(lower: str, at: int) -> bool:
    """Whether the clause that ``at`` continues (after "and" or a comma) is a question
    or a description. The look-back is bounded: a pasted log is one long line."""
    start = max(0, at - SUBORDINATE_REACH)
    window = lower[start:at]
    cut = max(window.rfind(mark) for mark in ".!?;:\n")
    return _SUBORDINATE.search(window, cut + 1) is not None


def _unwrapped(lower: str) -> str:
    """The text with hard-wrapped paragraphs (and list items) joined into single lines,
    so that a sentence broken across lines reads as one, and fenced code blanked."""
    lines: list[str] = []
    joinable = False
    fenced = False
    for line in lower.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            line = stripped = ""
        elif fenced:
            line = stripped = ""  # a quoted prompt or a command: nothing asked of this worker
        starts_block = not stripped or _BLOCK_START.match(line) is not None
        if joinable and not starts_block:
            lines[-1] += " " + stripped
        else:
            lines.append(line)
        joinable = bool(stripped) and stripped[0] not in "#|<`~"
    return "\n".join(lines)


def _lead_verbs(lower: str) -> tuple[int, int]:
    """How many clauses open with a request to change code, and how many with a review verb."""
    change = inspect = 0
    for match in _LEAD.finditer(lower):
        verb, rest = match.group("verb"), match.group("rest")
        if lower[match.start()] in ",a" and _subordinate(lower, match.start()):
            continue  # "tell me whether we should commit and push": not asked for
        if match.group("end") == ":" and len(rest.split()) <= 2:
            continue  # "Fix design:", "Review checklist:": a label, not a request
        if (
            verb in _DOCUMENT_VERBS
            and _REPORT_OBJECT.search(rest) is not None
            and _PATH.search(rest) is None
        ):
            inspect += 1  # the deliverable is a report: nothing in the tree changes
        elif verb in _CHANGE_STRONG or (
            verb in _CHANGE_WEAK and _OBJECT_START.match(rest) is not None
        ):
            change += 1
        elif verb in _INSPECT_VERBS or (
            verb in _NEUTRAL_INSPECT and _INSPECT_OBJECT.search(rest) is not None
        ):
            inspect += 1
    return change, inspect
