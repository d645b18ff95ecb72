"""DK3xx: a fire-and-forget executor selects, claims, dispatches and exits.

An executor runs on a schedule with a time limit. If it spawns before it
claims, the next run dispatches the same item again; if it waits on its
workers, it hits its own timeout; without a cap it floods rate limits; without
a hard timeout it holds its lane for the default hour; and an empty queue
must end in a silent ``NO_REPLY``, not a "nothing to do" message.
"""

from __future__ import annotations

from collections.abc import Iterator

from dispatch_kit.lint.document import Region
from dispatch_kit.lint.patterns import lazy, match_at_words, search_words
from dispatch_kit.lint.prose import all_negated, find_asked
from dispatch_kit.lint.registry import Example, Hit
from dispatch_kit.lint.rules._shared import BLOCK, family

EXECUTOR = frozenset({"executor"})
# A claim: the word, a lock or lease, or a change of the item's state that other runs see
# ("relabel each", "move it to the Intake column", "set their state to 'dispatched'",
# "mark up to 4 items [~]").
_CLAIM = lazy(
    r"\bclaim|\bin[- ]progress\b|\block (?:it|each|the item)\b|\blease\b|\breserve|\brelabel"
    r"|\b(?:mark|move|set|swap|flip|change|update|label|tag|transition|write|put|record|flag)"
    r"\w*\b[^.\n]{0,60}?"
    r"(?:\bstatus\b|\bstate\b|\blabel|\bcolumn\b|\b(?:to|as)[ \t]+[`'\"\[]|[ \t]\[)"
)
_CLAIM_WORD = r"(?:claim|label|in[- ]progress|lock|mark|reserve|relabel|status|state)"
_CLAIM_AFTER = lazy(
    r"\b(?:spawn|dispatch|start|launch)\w*[ \t]+first\b"
    r"|\b(?:spawn|dispatch|start|launch)\w*\b[^.]{0,80}?"
    r"\b(?:then|afterwards|after that|later|once (?:it|they|the \w+)|when (?:it|they) ha)"
    r"[^.]{0,40}?\b"
    + _CLAIM_WORD
    + r"|\b"
    + _CLAIM_WORD
    + r"\w*\b[^.]{0,60}?\b(?:afterwards|after (?:spawn|dispatch|start|launch)\w*"
    r"|after the (?:spawn|worker|dispatch))"
)
_WAIT_SOURCE = (
    r"(?:{start}|[,;:(][ \t]*|\b(?:and|then|you)[ \t]+"
    r"(?:will[ \t]+|should[ \t]+|must[ \t]+|then[ \t]+)?)"
    r"(?:wait(?:s|ing)?[ \t]+(?:for|on|until)\b|block(?:s|ing)?[ \t]+(?:on|until)\b|"
    r"poll(?:s|ing)?\b|monitor(?:s|ing)?\b|watch(?:es|ing)?\b|track(?:s|ing)?\b|"
    r"check(?:s|ing)?[ \t]+(?:on|back)\b|follow(?:s|ing)?[ \t]+up[ \t]+on\b|supervis\w*"
    r"|follow(?:s|ing)?[ \t]+(?:it|them|each[ \t]+\w+)[ \t]+through\b)"
    r"[^.]{0,60}?\b(?:workers?|subagents?|agents?|completions?|them|their|results?|progress|"
    r"each|all|every|status|outputs?)\b"
    r"|\bsessions_yield\b|\bawait\b"
)
_WAIT = lazy(_WAIT_SOURCE.replace("{start}", "^"))
# Over the whole text a sentence start is any place after white space (or the
# very start), so this matches wherever _WAIT matches in some sentence.
_WAIT_ANYWHERE = lazy(_WAIT_SOURCE.replace("{start}", r"(?<!\S)"))
# A number as people write one in a cap: digits, a number word, a template placeholder.
_NUMBER = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a dozen"
    r"|\{\{[^{}\n]{0,40}\}\}|\{[\w.]{1,40}\})"
)
# The ways people cap a run: "at most 6", "no more than five", "up to 3 per run", "limit: 5",
# "max 6" (_CAP, every match starting at one of _CAP_WORDS); "four repos per run at most",
# "only work on one item", "pick the three oldest", "take the first 2" (_CAP_OTHER).
_CAP = lazy(
    r"\b(?:at most|no more than|not more than|maximum(?: of)?|max\.?|up to|"
    r"cap(?:ped)?(?: at| of| to)?|limit(?:ed)?(?: to| of)?)[ \t]*(?:[:=][ \t]*)?" + _NUMBER + r"\b"
    r"|\u2264[ \t]*\d+|--(?:max|limit|cap)[\w-]*[ =]\d+"
)
_CAP_WORDS = ("at most", "no more", "not more", "max", "up to", "cap", "limit", "\u2264", "--")
_CAP_OTHER = lazy(
    r"\b" + _NUMBER + r"(?: [\w-]+){0,3}? (?:per|a|each) (?:run|tick|pass|batch)\b"
    r"|\b(?:only|just) (?:work on|take|pick|handle|dispatch|spawn) (?:one|a single)\b"
    r"|\b(?:pick|take|select|choose|handle|grab) the (?:\d+|two|three|four|five|six) "
    r"(?:oldest|newest|first|top|highest|most)"
    r"|\b(?:pick|take|select|choose|handle|grab) the (?:first|oldest|newest|top) "
    + _NUMBER
    + r"\b"
)
# What a cap of a dispatch is not: a number of characters, lines, seconds, retries.
_UNIT = lazy(
    r"[ \t]*(?:%|(?:percent|characters?|chars?|lines?|seconds?|secs?|s|ms|minutes?|mins?|m"
    r"|hours?|hrs?|h|words?|tokens?|bytes?|kb|mb|gb|times|retries|attempts|tries|rounds"
    r"|iterations|sentences?|(?:search |tool )?calls?)\b)"
)
_TIMEOUT = lazy(
    r"\btime-?[ \t]?outs?\b|\btimeoutseconds\b|\bdeadline\b|\bhard (?:time )?limit\b|"
    r"\bkilled (?:after|at)\b|\bwall[- ]clock\b|\btime limit\b|\btimes?[ \t]+out\b"
    r"|\b(?:run|job|session|executor|tick)\b[^.\n]{0,30}?\b(?:cut off|stop(?:s|ped)?|"
    r"end(?:s|ed)?|abort\w*|terminat\w*)[ \t]+(?:after|at|within)\b"
    r"|\bmax(?:imum)?\.?[ \t]*\d+[ \t]*(?:s|sec|seconds?|min|mins|minutes?|h|hours?)\b"
)


# Every _CLAIM_AFTER match starts at one of these (a verb, or a claim word).
_CLAIM_AFTER_STARTS = (
    "spawn",
    "dispatch",
    "start",
    "launch",
    "claim",
    "label",
    "in-progress",
    "in progress",
    "lock",
    "mark",
    "reserve",
)
# Every _CLAIM match starts at one of these.
_CLAIM_STARTS = (
    "claim",
    "in-progress",
    "in progress",
    "lock ",
    "lease",
    "reserve",
    "relabel",
    "mark",
    "move",
    "set",
    "swap",
    "flip",
    "chang",
    "updat",
    "label",
    "tag",
    "transition",
    "writ",
    "put",
    "record",
    "flag",
)


def _claims(region: Region) -> bool:
    """Whether the prompt claims its items: "claim" itself found first (the common case,
    one anchored try), else any state change searched from its first key word."""
    if search_words(_CLAIM, region.lower, ("claim",)) is not None:
        return True
    return search_words(_CLAIM, region.flat, _CLAIM_STARTS) is not None


def _check_claim(region: Region) -> Iterator[Hit]:
    if not _claims(region):
        yield region.anchor()
        return
    if not match_at_words(_CLAIM_AFTER, region.flat, _CLAIM_AFTER_STARTS):
        return  # a sentence is a stretch of the flattened text: no match there, none in one
    words = ("first", "then", "after", "later", "once", "when")
    for offset, _ in find_asked(region, _CLAIM_AFTER, words):
        yield region.at(offset, "claim each item before you dispatch it, not after")


_WAIT_WORDS = (
    "wait",
    "block",
    "poll",
    "monitor",
    "watch",
    "track",
    "check",
    "follow",
    "supervis",
    "sessions_yield",
)


_LEAD_WORDS = frozenset({"and", "then", "you", "will", "should", "must"})


def _wait_starts(flat: str, verb: int) -> range:
    """Where a _WAIT match can start whose verb (a key word) is at ``verb``.

    What can precede the verb is short: "and then ", "you must ", ", " or
    "(", or nothing ("await", one character earlier, counts too).
    """
    lead = verb - 1
    at = verb
    for _ in range(2):
        while at > 0 and flat[at - 1] in " \t":
            at -= 1
        if at > 0 and flat[at - 1] in ",;:(":
            return range(max(0, min(lead, at - 1)), verb + 1)
        start = at
        while start > 0 and flat[start - 1].isalpha():
            start -= 1
        if flat[start:at] not in _LEAD_WORDS:
            break
        lead = min(lead, start)
        at = start
    return range(max(0, lead), verb + 1)


# Reporting on the workers' outcome is waiting for them by another name.
_SUMMARY = lazy(
    r"\b(?:post|send|write|give|produce|share)\w*[ \t]+(?:(?:a|an|the|one|your)[ \t]+)?"
    r"(?:[\w-]+[ \t]+)?(?:summary|report|recap|status update|progress table)\b"
    r"|\blet (?:me|us) know how\b"
    r"|\breport (?:back )?(?:on )?(?:their|the workers'?) (?:results?|outcomes?|progress)\b"
)
_SUMMARY_WORDS = ("summary", "report", "recap", "status update", "progress table", "know how")
_SUMMARY_MESSAGE = (
    "dispatch and exit: do not report on the workers' results from this run (their pull "
    "requests, labels or a separate sweep report them)"
)


def _check_wait(region: Region) -> Iterator[Hit]:
    waits = region.mentions(_WAIT_WORDS) and not all_negated(
        region, _WAIT_ANYWHERE, _WAIT_WORDS, _wait_starts
    )
    if waits:  # else nothing asked for: no need to split the prompt into sentences
        for offset, _ in find_asked(region, _WAIT, _WAIT_WORDS, anchored=True):
            yield region.at(offset)
            return
    if region.mentions(_SUMMARY_WORDS):
        for offset, _ in find_asked(region, _SUMMARY, _SUMMARY_WORDS):
            yield region.at(offset, _SUMMARY_MESSAGE)
            return


def _check_cap(region: Region) -> Iterator[Hit]:
    """A cap is any capped number that is not a unit of something else ("at most 80
    characters", "max 5 minutes"), outside fenced code."""
    lower = region.lower
    start = min((at for at in map(lower.find, _CAP_WORDS) if at >= 0), default=-1)
    found = _CAP.finditer(lower, max(0, start - 1)) if start >= 0 else iter(())
    for pattern_matches in (found, _CAP_OTHER.finditer(region.flat)):
        for cap in pattern_matches:
            if _UNIT.match(lower, cap.end()) is None and not region.in_fence(cap.start()):
                return
    yield region.anchor()


# Every _TIMEOUT match starts at one of these.
_TIMEOUT_STARTS = (
    "time",
    "deadline",
    "hard ",
    "killed ",
    "wall",
    "run",
    "job",
    "session",
    "executor",
    "tick",
    "max",
)


def _check_timeout(region: Region) -> Iterator[Hit]:
    lower = region.lower
    if search_words(_TIMEOUT, lower, _TIMEOUT_STARTS[:5]) is not None:
        return  # found from the usual words ("timeout", "hard limit"): the common case
    if search_words(_TIMEOUT, lower, _TIMEOUT_STARTS) is None:
        yield region.anchor()


def _check_no_reply(region: Region) -> Iterator[Hit]:
    if "NO_REPLY" not in region.text:
        yield region.anchor()


# A stale claim returned by a sweep, done here or by another job: "the hourly sweep puts
# agent-working issues older than 3 hours back", "stale rows are reset by the janitor job".
_SWEEP = lazy(
    r"\bsweep|\bstale\b|\bjanitor\b|\breap(?:s|er|ing)?\b|\bexpir\w+|\bttl\b|\breclaim\w*"
    r"|\bclean-?up\b|\bre-?queue\w*|\b(?:put|return|move)\w*\b[^.]{0,40}?\bback\b"
    r"|\breset\w*\b[^.]{0,80}?\b(?:claim\w*|stuck|older than|not moved|in[- ]progress|abandoned)"
)
_SWEEP_WORDS = (
    "sweep",
    "stale",
    "janitor",
    "reap",
    "expir",
    "ttl",
    "reclaim",
    "reset",
    "clean",
    "queue",
    "put",
    "return",
    "move",
)


def _check_sweep(region: Region) -> Iterator[Hit]:
    if region.is_template:
        return  # who sweeps is usually a variable's business: the rendered prompt is checked
    lower = region.lower
    if "sweep" in lower or "stale" in lower:
        return  # the usual words: no pattern needed
    if not region.mentions(_SWEEP_WORDS) or search_words(_SWEEP, lower, _SWEEP_WORDS) is None:
        yield region.anchor()


_HEAD = "[Executor] Dispatch ready issues from the triage board, then exit.\n\n"
_GOOD = (
    _HEAD
    + """Hard timeout: this run is killed after 5 minutes.

1. List issues labelled `ready`. If there are none, print exactly `NO_REPLY` and stop.
2. Take at most 4 issues, oldest first.
3. For each: claim it first by swapping the `ready` label for `in-progress`; then spawn one
   worker for it without waiting.
4. Once all are dispatched, exit. Do not wait for the workers or check on them.

A separate sweep returns stale issues (no pull request after 3 hours) to the ready list.

"""
    + BLOCK
)


def _variant(old: str, new: str) -> str:
    assert old in _GOOD
    return _GOOD.replace(old, new)


# What every executor rule checks and the prompt that passes them all, stated once.
_executor_rule = family(
    applies_to="[Executor] prompts and templates", kinds=EXECUTOR, good=Example(_GOOD)
)

NO_CLAIM = _executor_rule(
    code="DK301",
    name="dispatch-before-claim",
    severity="error",
    message="claim each item (label, lock, ledger entry) before dispatching it",
    rationale="""\
Executors run again and again on a schedule. If a run spawns a worker and
only then marks the item taken, or never marks it, the next run sees the same
item as ready and dispatches it a second time: duplicate pull requests,
conflicting edits. An atomic claim before the spawn makes the item invisible
to the next run; a sweep returns claims whose worker died.""",
    bad=Example(
        _variant(
            "claim it first by swapping the `ready` label for `in-progress`; then spawn",
            "spawn",
        )
    ),
    check=_check_claim,
)

WAITS = _executor_rule(
    code="DK302",
    name="executor-waits-on-workers",
    severity="error",
    message="dispatch and exit: do not wait for, poll or monitor the workers (a separate sweep "
    "tracks them)",
    rationale="""\
The executor's job ends at the last spawn. An executor told to wait for its
workers, or to watch their progress, runs into its own timeout and blocks the
lane; completion is read later from state outside the session (a pull
request, a label, a status file), by a separate review or sweep. Posting a
summary of what the workers did is waiting by another name.""",
    bad=Example(
        _variant(
            "4. Once all are dispatched, exit. Do not wait for the workers or check on them.",
            "4. Then wait for the workers and report their results.",
        )
    ),
    check=_check_wait,
)

NO_CAP = _executor_rule(
    code="DK303",
    name="no-dispatch-cap",
    severity="error",
    message="cap the dispatches per run (for example: take at most 6 items)",
    rationale="""\
A backlog of forty ready items must not become forty concurrent sessions:
that trips rate limits and concurrent-session limits and buries the review
that follows. A fixed cap per run (the patterns use six) bounds the damage;
the rest waits for the next run. Any wording counts: "at most 6", "no more
than five", "up to 3 per run", "four repos per run at most", "limit: 5",
"max 6", "only work on one item"; a number of characters, lines or minutes
is no cap.""",
    bad=Example(_variant("2. Take at most 4 issues, oldest first.", "2. Take every ready issue.")),
    check=_check_cap,
)

NO_TIMEOUT = _executor_rule(
    code="DK304",
    name="no-executor-timeout",
    severity="error",
    message="give the executor run a hard timeout (for example: this run is killed after "
    "5 minutes)",
    rationale="""\
Without an explicit limit a scheduled run inherits the scheduler's default,
often an hour. An executor that should finish in two minutes but hangs on one
call then holds its lane for the whole hour and the next runs queue behind
it.""",
    bad=Example(_variant("Hard timeout: this run is killed after 5 minutes.\n\n", "")),
    check=_check_timeout,
)

NO_REPLY = _executor_rule(
    code="DK305",
    name="no-empty-queue-no-reply",
    severity="error",
    message="say what to do on an empty queue: print exactly NO_REPLY and stop",
    rationale="""\
Most scheduled runs find nothing to do. An executor that then posts "no work
found" floods the channel it reports to; the convention is to answer the
single token NO_REPLY, which the scheduler drops.""",
    bad=Example(
        _variant(
            "If there are none, print exactly `NO_REPLY` and stop.",
            "If there are none, say so.",
        )
    ),
    check=_check_no_reply,
)

NO_SWEEP = _executor_rule(
    code="DK306",
    name="no-stale-claim-sweep",
    severity="warning",
    message="say what returns stale claims: a sweep that resets items claimed long ago "
    "(here, or by a named separate job)",
    rationale="""\
A worker that crashes or times out leaves its item claimed for ever: no later
run picks it up and nobody notices. The pattern pairs the claim with a
periodic sweep that puts items stuck in progress for longer than a threshold
back in the queue. The executor need not run the sweep itself; saying which
job does (a janitor, the morning sweep) is enough. A warning: the sweep may
live outside the prompt. Templates are checked once rendered, since the job
that sweeps is usually one of their variables.""",
    bad=Example(
        _variant(
            "\nA separate sweep returns stale issues (no pull request after 3 hours) to the "
            "ready list.\n",
            "",
        )
    ),
    check=_check_sweep,
)

RULES = (NO_CLAIM, WAITS, NO_CAP, NO_TIMEOUT, NO_REPLY, NO_SWEEP)
