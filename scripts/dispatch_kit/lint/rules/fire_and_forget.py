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
from dispatch_kit.lint.prose import all_negated, find_asked, matches
from dispatch_kit.lint.registry import Example, Hit
from dispatch_kit.lint.rules._shared import BLOCK, family

EXECUTOR = frozenset({"executor"})
_CLAIM = lazy(r"\bclaim|\bin[- ]progress\b|\block (?:it|each|the item)\b|\blease\b|\breserve")
_CLAIM_WORD = r"(?:claim|label|in[- ]progress|lock|mark|reserve)"
_CLAIM_AFTER = lazy(
    r"\b(?:spawn|dispatch|start|launch)\w*[ \t]+first\b"
    r"|\b(?:spawn|dispatch|start|launch)\w*\b[^.]{0,80}?\b(?:then|afterwards|after that|later)\b"
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
    r"check(?:s|ing)?[ \t]+(?:on|back)\b|follow(?:s|ing)?[ \t]+up[ \t]+on\b|supervis\w*)"
    r"[^.]{0,60}?\b(?:workers?|subagents?|agents?|completions?|them|their|results?|progress|"
    r"each|all|every|status|outputs?)\b"
    r"|\bsessions_yield\b|\bawait\b"
)
_WAIT = lazy(_WAIT_SOURCE.replace("{start}", "^"))
# Over the whole text a sentence start is any place after white space (or the
# very start), so this matches wherever _WAIT matches in some sentence.
_WAIT_ANYWHERE = lazy(_WAIT_SOURCE.replace("{start}", r"(?<!\S)"))
_CAP = lazy(
    r"\b(?:at most|no more than|not more than|maximum(?: of)?|max\.?|up to|"
    r"cap(?:ped)?(?: at| of| to)?|limit(?:ed)?(?: to| of)?)[ \t]*(?:[:=][ \t]*)?\d+"
    r"|\u2264[ \t]*\d+|"
    r"--(?:max|limit|cap)[\w-]*[ =]\d+"
)
_CAP_OBJECT = lazy(
    r"\b(?:items?|workers?|tasks?|issues?|jobs?|dispatch\w*|spawn\w*|agents?|subagents?|"
    r"pull requests?|prs?|per run|this run|one run|each run)\b"
)
_TIMEOUT = lazy(
    r"\btime-?[ \t]?outs?\b|\btimeoutseconds\b|\bdeadline\b|\bhard (?:time )?limit\b|"
    r"\bkilled (?:after|at)\b|\bwall[- ]clock\b|\btime limit\b"
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
_CLAIM_STARTS = ("claim", "in-progress", "in progress", "lock ", "lease", "reserve")


def _check_claim(region: Region) -> Iterator[Hit]:
    if search_words(_CLAIM, region.lower, _CLAIM_STARTS) is None:
        yield region.anchor()
        return
    if not match_at_words(_CLAIM_AFTER, region.flat, _CLAIM_AFTER_STARTS):
        return  # a sentence is a stretch of the flattened text: no match there, none in one
    for offset, _ in find_asked(region, _CLAIM_AFTER, ("first", "then", "after", "later")):
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


def _check_wait(region: Region) -> Iterator[Hit]:
    if not region.mentions(_WAIT_WORDS) or all_negated(
        region, _WAIT_ANYWHERE, _WAIT_WORDS, _wait_starts
    ):
        return  # nothing asked for: no need to split the prompt into sentences
    for offset, _ in find_asked(region, _WAIT, _WAIT_WORDS, anchored=True):
        yield region.at(offset)


def _capped_on_one_line(lower: str) -> bool:
    """A sufficient test for the cap: a _CAP match and a _CAP_OBJECT match on one line
    with no ``.``, ``!`` or ``?`` from the start of the first to the end of the other.

    Both then sit in one sentence ("Take at most 4 issues"), which is all the
    rule asks, and the prompt need not be split into sentences. A fence line
    (```) belongs to no sentence, so it does not count. When this finds
    nothing the exact, sentence-by-sentence check decides.
    """
    for cap in _CAP.finditer(lower):
        start = lower.rfind("\n", 0, cap.start()) + 1
        end = lower.find("\n", cap.end())
        end = len(lower) if end < 0 else end
        if lower[start:end].lstrip()[:3] in ("```", "~~~"):
            continue
        for thing in _CAP_OBJECT.finditer(lower, start, end):
            span = lower[min(cap.start(), thing.start()) : max(cap.end(), thing.end())]
            if "." not in span and "!" not in span and "?" not in span:
                return True
    return False


def _check_cap(region: Region) -> Iterator[Hit]:
    if _capped_on_one_line(region.lower):
        return
    words = ("at most", "more than", "max", "up to", "cap", "limit", "\u2264", "--")
    for sentence, _ in matches(region, _CAP, words):
        if _CAP_OBJECT.search(sentence.text):
            return
    yield region.anchor()


# Every _TIMEOUT match starts at one of these.
_TIMEOUT_STARTS = ("time", "deadline", "hard ", "killed ", "wall")


def _check_timeout(region: Region) -> Iterator[Hit]:
    if search_words(_TIMEOUT, region.lower, _TIMEOUT_STARTS) is None:
        yield region.anchor()


def _check_no_reply(region: Region) -> Iterator[Hit]:
    if "NO_REPLY" not in region.text:
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
request, a label, a status file), by a separate review or sweep.""",
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
the rest waits for the next run.""",
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

RULES = (NO_CLAIM, WAITS, NO_CAP, NO_TIMEOUT, NO_REPLY)
