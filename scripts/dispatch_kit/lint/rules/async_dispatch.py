"""DK5xx: non-blocking dispatch needs backpressure, stop conditions and timeout detection.

Async dispatch trades the join point of a blocking fan-out for throughput.
The join point gave three things for free that an async prompt must now ask
for: a bound on how many delegates are in flight, an end to every polling or
retry loop, and detection of a delegate that hung.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from dispatch_kit.lint.document import Region
from dispatch_kit.lint.kinds import PROMPT_KINDS
from dispatch_kit.lint.patterns import lazy, search_words
from dispatch_kit.lint.prose import _offsets, all_negated, find_asked, matches
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BLOCK

_FAN_OUT = lazy(
    r"\b(?:dispatch|spawn|launch|kick(?:s|ing)? off|fire(?:s|ing)? off|send)\w*\b[^.]{0,80}?"
    r"\b(?:in parallel|concurrently|simultaneously|all at once|at once|in the background)\b"
    r"|\bstart\w*[ \t]+(?:\w+[ \t]+){0,4}?(?:sub)?agents?\b[^.]{0,60}?"
    r"\b(?:in parallel|concurrently|simultaneously|all at once|in the background)\b"
    r"|\bfan(?:s|ning)?[- ]?out\b"
    r"|\bfor (?:each|every)\b[^.]{0,80}?\b(?:dispatch|spawn|launch)\w*\b[^.]{0,60}?"
    r"\b(?:background|parallel)\b"
)
_BOUND = lazy(
    r"\b(?:at most|no more than|not more than|up to|maximum(?: of)?|max\.?|"
    r"cap(?:ped)?(?: at| of| to)?|limit(?:ed)?(?: to| of)?)[ \t]*(?:[:=][ \t]*)?\d+"
)
_CONCURRENCY = lazy(
    r"\b(?:dispatch\w*|spawn\w*|launch\w*|in[- ]flight|at a time|at once|concurrent\w*|parallel|"
    r"simultaneous\w*|running|waves?|batch(?:es)?|slots?|background)\b"
)
_MANY = lazy(
    r"\b(?:each|every|all|one per|per)\b|\b(?:sub)?agents\b|\bworkers\b|\bdelegates\b"
    r"|\breviewers\b|\bfan(?:s|ning)?[- ]?out\b"
)
_WIP_LIMIT = lazy(
    r"\bwip[- ]limit|\bin (?:waves|batches|groups) of[ \t]*\d+|\b\d+[ \t]+at a time\b"
    r"|\b\d+[ \t]+(?:in[- ]flight|concurrent)"
    r"|\bconcurrency(?: limit)?[ \t]*(?:(?:of|=|:)[ \t]*)?\d+"
    r"|--jobs\b|\bjobs?[ \t]*[=:][ \t]*\d+"
)
_LOOP = lazy(
    r"\bpoll(?:s|ing)?\b|\bkeep (?:checking|trying|retrying|polling|waiting|looping)\b"
    r"|\bretry(?:ing)? (?:it |them |the \w+ )?(?:again and again|repeatedly|forever|indefinitely|"
    r"in a loop)\b|\b(?:polling|retry|wait(?:ing)?) loop\b|\bloop (?:forever|while)\b"
    r"|\brepeatedly\b"
    r"|\bevery[ \t]+\d+[ \t]*(?:s|sec|secs|seconds?|min|mins|minutes?)\b"
)
_STOP = lazy(
    r"\buntil\b|\bat most\b|\bno more than\b|\bup to[ \t]+\d|\bmax(?:imum)?\.?[ \t]*(?:of[ \t]*)?\d"
    r"|\b\d+[ \t]*(?:times|attempts|retries|tries|rounds|polls)\b|\btime-?[ \t]?outs?\b"
    r"|\bdeadline\b|\bgive up\b|\bstop (?:after|when|if|once|conditions?)\b|\bafter[ \t]+\d+\b"
    r"|\bonce\b"
    r"|\blimit\b"
)
_BACKGROUND = lazy(
    r"\bin the background\b|\bbackground (?:sub)?agents?\b|\bbackground (?:tasks?|jobs?|"
    r"dispatch(?:es)?|workers?|runs?)\b|\brun_in_background\b|\bbackground:[ \t]*true\b"
    r"|\bnon-?blocking\b|\basynchronous(?:ly)?\b|\basync dispatch\b"
)
_TIMEOUT_DETECTION = lazy(
    r"\btime-?[ \t]?outs?\b|\btimed out\b|\bdeadline\b|\bhung\b|\bhang(?:s|ing)?\b|\bstale\b"
    r"|\bstuck\b|\bheartbeat\b|\btimeoutseconds\b|\bsweep\b"
    r"|\b(?:cancel|kill|stop)\w*\b[^.]{0,40}?\b(?:after|if|when|once)\b[^.]{0,30}?\d"
)
_LOOP_WORDS = ("poll", "keep ", "retry", "loop", "repeatedly", lazy(r"every[ \t]+\d"))
_LOOP_STRINGS = ("poll", "keep ", "retry", "loop", "repeatedly", "every")
_FAN_OUT_WORDS = ("parallel", "concurrent", "simultaneous", "at once", "background", "fan")
_BACKGROUND_WORDS = ("background", "blocking", "asynchron", "async")
# Inspections count too: a survey that starts one background reader per package is a
# fan-out like any other.
FAN_OUT_KINDS = frozenset({"execute", "plan", "retry", "dispatch", "inspect"})
DISPATCHING = frozenset({"execute", "plan", "executor", "retry", "dispatch"})


_BOUND_WORDS = ("at most", "more than", "up to", "max", "cap", "limit")


# Every _WIP_LIMIT match holds one of these: a text without any skips its search.
_WIP_WORDS = (
    "wip",
    "in waves",
    "in batches",
    "in groups",
    "at a time",
    "flight",
    "concurren",
    "job",
)


# A _WIP_LIMIT match starts at one of _WIP_WORDS or at a count before it
# ("3 at a time", "2 in-flight", "--jobs"); no key word starts with these.
_WIP_BACK = " \t0123456789-in"
# Every _TIMEOUT_DETECTION match starts at one of these.
_TIMEOUT_STARTS = (
    "time",
    "deadline",
    "hung",
    "hang",
    "stale",
    "stuck",
    "heartbeat",
    "sweep",
    "cancel",
    "kill",
    "stop",
)


def has_wip_limit(region: Region) -> bool:
    if search_words(_WIP_LIMIT, region.lower, _WIP_WORDS, _WIP_BACK):
        return True
    return any(_CONCURRENCY.search(s.text) for s, _ in matches(region, _BOUND, _BOUND_WORDS))


def _check_wip(region: Region) -> Iterator[Hit]:
    if not region.mentions(_FAN_OUT_WORDS) or has_wip_limit(region):
        return
    for sentence, match in matches(region, _FAN_OUT, _FAN_OUT_WORDS):
        if _MANY.search(sentence.text) and not sentence.negated_at(match.start()):
            yield region.at(sentence.start + match.start())
            return


def _loop_starts(flat: str, offset: int) -> Iterable[int]:
    """Where a _LOOP match holding the key word at ``offset`` can start.

    Every alternative but one opens with a key word ("poll", "keep ", "retry",
    "repeatedly", "every N"), so the match starts on it. Only "loop" can come
    after the start: "wait loop", "polling loop", at most 8 characters before.
    """
    if flat.startswith("loop", offset):
        return range(max(0, offset - 8), offset + 1)
    return (offset,)


def _stop_beside_each_loop(region: Region) -> bool:
    """A sufficient test for "every loop has its stop condition", without sentences.

    Every _LOOP match holds one of _LOOP_WORDS, so the line of each key word
    belongs to the paragraph (or list item) of any loop sentence. When that
    line also holds a _STOP match with no ``.``, ``!`` or ``?`` inside it, the
    match lies within one sentence of that paragraph, which is what the rule
    accepts ("poll every 30 s until the run ends"). A fence line (```) is in
    no paragraph, so it sends the prompt to the exact check.
    """
    lower = region.lower
    for offset in _offsets(region.flat, _LOOP_WORDS):
        start = lower.rfind("\n", 0, offset) + 1
        end = lower.find("\n", offset)
        end = len(lower) if end < 0 else end
        if lower[start:end].lstrip()[:3] in ("```", "~~~"):
            return False
        for stop in _STOP.finditer(lower, start, end):
            found = stop.group(0)
            if "." not in found and "!" not in found and "?" not in found:
                break
        else:
            return False
    return True


def _check_loop(region: Region) -> Iterator[Hit]:
    # _LOOP has no anchors or look-arounds, so it serves as its own whole-text test;
    # each match starts at one of the words, or at most 8 characters before "loop".
    if not region.mentions(_LOOP_STRINGS) or all_negated(region, _LOOP, _LOOP_WORDS, _loop_starts):
        return
    if _stop_beside_each_loop(region):
        return
    for sentence, match in matches(region, _LOOP, _LOOP_WORDS):
        if sentence.negated_at(match.start()):
            continue
        if not any(_STOP.search(s.text) for s in region.paragraphs[sentence.unit]):
            yield region.at(sentence.start + match.start())


def _check_background(region: Region) -> Iterator[Hit]:
    if not region.mentions(_BACKGROUND_WORDS) or search_words(
        _TIMEOUT_DETECTION, region.lower, _TIMEOUT_STARTS
    ):
        return
    for offset, _ in find_asked(region, _BACKGROUND, _BACKGROUND_WORDS):
        yield region.at(offset)
        return


_AUDIT = "[Plan] Audit the 40 documentation pages listed in pages.txt.\n\n"

NO_WIP = Rule(
    code="DK501",
    name="fan-out-without-wip-limit",
    severity="warning",
    message="bound the fan-out: at most N delegates in flight (for example: in waves of 5)",
    rationale="""\
Unbounded async dispatch floods the orchestrator's context with pending task
state and returning results, and past a point more agents amplify errors
instead of throughput. A work-in-progress limit (at most N in flight, or waves
of N) keeps results processable as they arrive.""",
    applies_to="[Execute], [Plan], [Retry], [Inspect] and other dispatch prompts (executors: see "
    "DK303)",
    bad=Example(
        _AUDIT
        + "Dispatch one review subagent per page in the background. Time out any review that "
        "runs longer than 10 minutes.\n\n" + BLOCK
    ),
    good=Example(
        _AUDIT
        + "Dispatch review subagents in the background in waves of 5; start the next wave when a "
        "wave has returned. Time out any review that runs longer than 10 minutes.\n\n" + BLOCK
    ),
    kinds=FAN_OUT_KINDS,
    check=_check_wip,
)

NO_STOP = Rule(
    code="DK502",
    name="loop-without-stop-condition",
    severity="warning",
    message="give the loop a stop condition: until X, at most N tries, or a timeout",
    rationale="""\
"Poll the job status" or "keep retrying the upload" with no end turns a stuck
delegate into a stuck orchestrator, spending its budget on a loop that cannot
finish. Every poll or retry loop names when it stops: a condition (until the
file exists), a count (at most 3 tries) or a time limit.""",
    applies_to="every dispatch prompt",
    bad=Example(_AUDIT + "Poll the review jobs every 30 seconds.\n\n" + BLOCK),
    good=Example(
        _AUDIT + "Poll the review jobs every 30 seconds until all have finished, at most 20 "
        "times; then report the ones still running.\n\n" + BLOCK
    ),
    kinds=PROMPT_KINDS,
    check=_check_loop,
)

NO_TIMEOUT_DETECTION = Rule(
    code="DK503",
    name="background-without-timeout",
    severity="warning",
    message="say how a hung background delegate is detected and cancelled (a timeout per delegate)",
    rationale="""\
A blocking dispatch surfaces a hung delegate at its join point; a background
one does not. Without an explicit timeout per delegate, a hung agent stays
invisible, its slot is never freed, and the orchestrator waits for a result
that will not come.""",
    applies_to="dispatch prompts that start delegates in the background",
    bad=Example(_AUDIT + "Dispatch review subagents in the background in waves of 5.\n\n" + BLOCK),
    good=Example(
        _AUDIT + "Dispatch review subagents in the background in waves of 5. Cancel any review "
        "that has not returned after 10 minutes and list it as timed out.\n\n" + BLOCK
    ),
    kinds=DISPATCHING,
    check=_check_background,
)

RULES = (NO_WIP, NO_STOP, NO_TIMEOUT_DETECTION)
