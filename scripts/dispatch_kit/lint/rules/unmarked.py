"""DK103: a dispatch that asks for work but carries no kind marker (part of the DK1 family).

Most unmarked work orders are read as such by kind inference
(:mod:`dispatch_kit.lint.infer`), and the [Execute] rules then run on them
directly. This rule is the net below it: a request for edits or commands in a
prompt the inference could not place.

The stream-safety block (DK101) and the exit-criteria rules (DK2xx) run only on
prompts marked [Execute] or [Plan]. A prompt without a marker gets only the
rules that hold for every text, on purpose: an exploratory question must never
be blocked. The price is a loophole: "implement the parser change, run the
tests and commit", sent unmarked, is a full execute dispatch that no rule
checks. This rule closes it with a warning, so it never blocks: an unmarked
prompt file or hook prompt that plainly asks for edits or commands is told to
say what it is.

Conservative like the kind detection it backs up: only prompt-like files
(prompt files, stdin, hook prompts, templates, never skills, agents or
documents), only a request in imperative position ("Fix the parser", "then
run the tests", "you should commit"), and never one that is forbidden ("do not
edit anything"), hypothetical, asked as a question, or quoted in fenced code.
A prompt whose kind= directive says it is a plain dispatch has made its choice
and is not warned either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dispatch_kit.lint.document import Region
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.prose import NEGATION, matches
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BASH_WORDS, BASH_WORK, BLOCK

UNMARKED = frozenset({"dispatch", "unknown"})
# Only text that is sent as a prompt: skills, agents and documents describe
# workers ("the worker runs the tests") without dispatching anything.
PROMPT_FILES = frozenset({"prompt", "template"})

# A file path (src/x, ./x, ~/x, /x) or a file name with a source or data extension.
_PATH = (
    r"[`'\"]?(?:(?:/|\.{1,2}/|~/)?(?!and/or\b)[\w.~-]*\w/[\w./-]*"
    r"|[\w-]+\.(?:py|pyi|js|mjs|cjs|ts|tsx|jsx|go|rs|java|kt|rb|php|c|h|cc|cpp|hpp|cs|swift|md|"
    r"rst|txt|json|ya?ml|toml|ini|cfg|conf|sh|bash|sql|html|css|scss|xml|lock|gradle|j2|jinja|"
    r"env|csv)\b)"
)
# What code work acts on, when no path names it.
_CODE = (
    r"(?:files?|code|codebase|sources?|functions?|methods?|class(?:es)?|modules?|packages?|"
    r"tests?|test[ \t]+suite|specs?|scripts?|config(?:uration)?s?|settings|repo(?:sitory)?|"
    r"branch(?:es)?|implementation|parser|handlers?|endpoints?|schemas?|migrations?|"
    r"docstrings?|readme|changelog|docs|documentation|dependenc(?:y|ies)|components?|"
    r"makefile|dockerfile|workflows?|templates?|fixtures?|lockfile|imports?|commits?|"
    r"pull[ \t]+requests?|prs?)\b"
)
# Up to three words between a verb and its object ("the new", "a small python"),
# but no preposition: in "write a summary of the tests" the tests are not written.
_FILLERS = (
    r"(?:(?!(?:of|about|on|for|from|with|in|into|to|at|and|or|that|which|explaining|"
    r"describing|summari[sz]ing|listing|comparing)\b)[\w'-]+[ \t]+){0,3}"
)
_VERB_END = r"\b[*_]{0,2}[ \t]+"
# A request to change files or code. Every match starts with one of _EDIT_WORDS.
_EDIT_WORK = lazy(
    r"\b(?:implement|refactor|fix)" + _VERB_END + r"[`'\"]?[\w/.~-]+"
    r"|\b(?:edit|modify|change|update|rewrite|rename|delete|remove|patch)"
    + _VERB_END
    + _FILLERS
    + r"(?:`[^`\n]+`|"
    + _PATH
    + r"|"
    + _CODE
    + r")"
    r"|\b(?:create|write|add)" + _VERB_END + _FILLERS + r"(?:" + _PATH + r"|" + _CODE + r")"
    r"|\b(?:edit|modify|change|update|rewrite|create|write|add|append|save)\b"
    r"[^.;!?\n]{0,60}?\b(?:to|into|in|under|at)[ \t]+" + _PATH
)
_EDIT_WORDS = (
    "implement",
    "refactor",
    "fix",
    "edit",
    "modif",
    "chang",
    "updat",
    "rewrit",
    "renam",
    "delet",
    "remov",
    "patch",
    "creat",
    "writ",
    "add",
    "append",
    "save",
)
_WORDS = _EDIT_WORDS + BASH_WORDS
# "Run a search for the test files" asks for a look-up, not a command.
_LOOKUP = lazy(r"\b(?:search|searches|grep|query|queries|lookup|look-up)\b")
# Where the words quoted in the message end.
_PHRASE_END = lazy(r"[.;:,!?](?=\s|$)|\n")

# Where a clause starts: a request's verb comes right after one of these (or
# after a lead-in such as "please" or "you should"). "-->" ends a comment line,
# which the sentence splitter joins to the paragraph below it.
_HARD_BREAK = lazy(r"[;:,()]|-->|[ \t][-\u2013\u2014][ \t]")
_SOFT_BREAK = lazy(r"\b(?:and|then|also|or)\b")
# Words that make the rest of a clause a question or a description, not a request:
# "tell me whether we should commit", "explain how you would run the tests".
_SUBORDINATE = lazy(
    r"\b(?:whether|if|how|why|what|which|who|whom|whose|where|when|that|because|unless|"
    r"until|while|whereas|although|though|once)\b"
)
_QUESTION_START = lazy(
    r"[\W_]*(?:do|does|did|is|are|was|were|can|could|will|would|should|shall|has|have|had|"
    r"may|might|must)\b"
)
_LEAD_IN = lazy(
    r"[\W_]*(?:(?:please|also|first|next|now|finally|afterwards|lastly|just|simply|then|so)\b"
    r"[\W_]*)*"
    r"(?:(?:you|the[ \t]+(?:worker|agent|subagent))[ \t]+"
    r"(?:should|must|shall|will|need[ \t]+to|have[ \t]+to|are[ \t]+to)[ \t]+"
    r"|(?:i[ \t]+)?(?:need|want)[ \t]+you[ \t]+to[ \t]+"
    r"|(?:your|the)[ \t]+(?:task|job|goal)[ \t]+is[ \t]+to[ \t]+"
    r"|(?:make|be)[ \t]+sure[ \t]+(?:to|you)[ \t]+"
    r"|remember[ \t]+to[ \t]+"
    r"|go[ \t]+ahead[ \t]+and[ \t]+)?"
    r"(?:please[ \t]+)?"
)


# Requests in imperative position tried per sentence: each costs a scan of the sentence
# for negations, and a pasted list of "Don't: fix a, fix b, ..." must stay linear.
_MAX_TRIES = 12
# Verbs whose object is text for the reply, not a change: "write a commit message",
# "create a list of the files that ...", "add up the numbers", "run me through the tests".
_TEXT_ONLY = lazy(
    r"(?:write|create|add|draft|compose|prepare)[ \t]+"
    r"(?:(?:a|an|the|me|us|your|short|brief|new|detailed|quick|one|test|code|commit|release|"
    r"pull[ \t]+request|pr|step-by-step)[ \t]+){0,3}"
    r"(?:messages?|plans?|reviews?|lists?|summar(?:y|ies)|descriptions?|reports?|outlines?|"
    r"overviews?|explanations?|proposals?|checklists?|strateg(?:y|ies)|notes?|answers?|"
    r"repl(?:y|ies)|comments?|drafts?|titles?)\b"
    r"|run[ \t]+(?:me[ \t]+|us[ \t]+)?through\b"
    r"|add(?:s|ed|ing)?[ \t]+up\b"
)
# How far before a verb its clause may start. A "sentence" can be a whole pasted log
# (lines of a paragraph are joined); searching back from every candidate verb to the
# sentence's start made such a prompt quadratic (a 70 KB one took 25 s in the hook).
# A verb further than this from any break opens no clause it could be asked in.
_CLAUSE_WINDOW = 200


def _imperative(text: str, index: int) -> bool:
    """Whether the verb at ``index`` of a sentence is asked for, by its position.

    It must open its clause, alone or after a lead-in ("Fix the parser",
    "please fix", "you should fix", "read it and fix", "when done, fix"), in a
    clause that no "whether", "how" or "if" turns into a question or a
    description ("tell me whether we should commit and push").
    """
    window = max(0, index - _CLAUSE_WINDOW)
    start = window
    for found in _HARD_BREAK.finditer(text, window, index):
        start = found.end()
    if start == window and window > 0:
        return False  # no clause break within reach: mid-clause, not a request
    if _SUBORDINATE.search(text, start, index) is not None:
        return False
    if start == 0 and _QUESTION_START.match(text) is not None:
        return False  # "does the script run the tests" without its question mark
    lead = start
    for found in _SOFT_BREAK.finditer(text, start, index):
        lead = found.end()
    return _LEAD_IN.fullmatch(text, lead, index) is not None


def asked_work(region: Region) -> int | None:
    """Offset of the first edit or command the prompt asks for, or None."""
    best: int | None = None
    for pattern, words in ((_EDIT_WORK, _EDIT_WORDS), (BASH_WORK, BASH_WORDS)):
        for sentence, first in matches(region, pattern, words):
            if best is not None and sentence.start >= best:
                break  # sentences come in order: nothing earlier is left
            text = sentence.text
            if text.endswith("?"):
                continue  # a question, not a request
            match: re.Match[str] | None = first
            tried = 0
            while match is not None and tried < _MAX_TRIES:
                at = match.start()
                asked = match.group(0)
                if not _imperative(text, at):  # bounded; negated_at scans the sentence
                    match = pattern.search(text, match.end())
                    continue
                tried += 1
                if (
                    NEGATION.search(asked) is None  # "write it to no file"
                    and (pattern is not BASH_WORK or _LOOKUP.search(asked) is None)
                    and _TEXT_ONLY.match(text, at) is None
                    and not region.in_fence(sentence.start + at)
                    and not sentence.negated_at(at)
                ):
                    best = sentence.start + at
                    break
                match = pattern.search(text, match.end())
    return best


def _phrase(text: str, offset: int) -> str:
    """The request as written, up to its clause's end and at most about 40 characters."""
    end = _PHRASE_END.search(text, offset, offset + 80)
    words = " ".join(text[offset : end.start() if end else offset + 80].replace("*", "").split())
    if len(words) > 40:
        words = words[:40].rsplit(" ", 1)[0] + " ..."
    return words


def _check(region: Region) -> Iterator[Hit]:
    if region.explicit or region.doc.file_kind not in PROMPT_FILES:
        return  # a kind= directive said what it is; skills, agents and docs only describe
    if not region.mentions(_WORDS):
        return
    offset = asked_work(region)
    if offset is not None:
        yield region.anchor(
            f"this dispatch asks to '{_phrase(region.text, offset)}' but has no kind marker; "
            "start it with [Execute] (or [Plan]) so the stream-safety and exit-criteria rules "
            "apply, or [Inspect] if it only reads"
        )


_BAD = """You should raise the retry limit in src/payments/retry.py to 5 attempts.
Run the tests with `python3 -m pytest -q tests/test_retry.py` once it is done.
"""
_GOOD = (
    """[Execute] Task `retry-limit`: stop payment retries after 5 attempts

Working directory: src/payments

Implement the retry limit in retry.py: stop after 5 attempts, then commit the change.

## Exit criteria
1. `python3 -m pytest -q tests/test_retry.py`

"""
    + BLOCK
)

UNMARKED_WORK = Rule(
    code="DK103",
    name="unmarked-work-dispatch",
    severity="warning",
    message="this dispatch asks for edits or commands but has no kind marker; start it with "
    "[Execute] (or [Plan]) so the stream-safety and exit-criteria rules apply, or [Inspect] "
    "if it only reads",
    rationale="""\
The Stream-safety block and the exit-criteria rules run only on prompts marked
[Execute] or [Plan]; unmarked prompts get only the rules that hold for every
text, so that a quick question is never held up. Leaving the marker out thus
lets a real work order skip every check that keeps the worker alive and its
result verifiable: told to implement, test and commit, it can go quiet and be
cut off, or report a success nobody can check. Say what the dispatch is. The
rule only warns (words cannot prove intent) and only on prompts: prohibitions
("do not edit anything"), questions, descriptions and code quoted in fences
do not count, and skills, agents and documents describe workers rather than
dispatch them. Most unmarked work orders are read as [Execute] or [Plan]
prompts from their content and get those rules directly; this warning is for
the requests the reading cannot place.""",
    applies_to="unmarked prompt files, stdin, hook prompts and templates whose kind is not "
    "inferred",
    bad=Example(_BAD),
    good=Example(_GOOD),
    kinds=UNMARKED,
    check=_check,
)

RULES = (UNMARKED_WORK,)
