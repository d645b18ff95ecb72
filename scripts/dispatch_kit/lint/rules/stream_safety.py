"""DK1xx: the stream-safety block every [Execute] and [Plan] dispatch carries.

A harness that hears nothing from a subagent for a while, or waits on one very
slow tool call, decides the stream is dead and kills the run. Three rules keep
a working agent visibly alive: a short progress line before each tool call, no
single call over 60 seconds, and narrower reads after a read of more than 500
lines. Inspection dispatches (one read and an answer, or fewer than three
calls) do not need the block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dispatch_kit.lint.document import Region
from dispatch_kit.lint.kinds import ALL_KINDS, DISPATCH_KINDS
from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.registry import Example, Hit, Rule
from dispatch_kit.lint.rules._shared import BLOCK

# Matched against one line at a time (found by a substring search for "stream").
_HEADER = lazy(
    r"[ \t>]*(?:(?P<heading>#{1,6})[ \t]*)?[*_]{0,2}stream[ -]safety[*_]{0,2}"
    r"(?:[ \t]*(?P<colon>:)[*_]{0,2}(?P<rest>[^\n]*))?[ \t\r]*",
    re.I,
)
_TEMPLATE_REFERENCE = lazy(r"(?:\{\{|\{%)[^}]*stream[-_]safety", re.I)
_BLOCK_END = lazy(
    r"^[ \t]{0,3}#{1,6}[ \t]|\n[ \t]*\n(?=[ \t]{0,3}(?![-*+][ \t]|\d{1,3}[.)][ \t])\S)", re.M
)
# Each part: its label, its pattern, and the words one of which starts every
# match of it. The search starts at the first of those words: a block without
# any lacks the part, and the pattern never scans the text before the words.
PARTS = (
    ("rule 1 (a progress line before each tool call)", lazy(r"\bprogress\b"), ("progress",)),
    (
        "rule 2 (no single tool call over 60 s)",
        lazy(r"\b60\s*(?:s\b|sec|second)|\b60-second|\bsixty seconds"),
        ("60", "sixty"),
    ),
    (
        "rule 3 (narrow a read of more than 500 lines with offset/limit)",
        lazy(r"\boffset\b|\b500\s+lines"),
        ("offset", "500"),
    ),
)
STREAM_KINDS = frozenset({"execute", "plan"})


def headers(region: Region, fenced: bool) -> Iterator[re.Match[str]]:
    """Every line that opens a stream-safety block (``Stream-safety:``).

    ``fenced``: include blocks inside fenced code (a prompt quoted in a prompt).
    """
    lower = region.lower
    text = region.text
    strict = region.kind not in DISPATCH_KINDS
    found = lower.find("stream")
    while found >= 0:
        start = lower.rfind("\n", 0, found) + 1
        end = lower.find("\n", found)
        end = len(lower) if end < 0 else end
        found = lower.find("stream", end)
        match = _HEADER.fullmatch(text, start, end)
        if match is None:
            continue
        if match.group("colon") is None and match.group("heading") is None:
            continue  # prose that merely starts with the words
        if strict and (match.group("rest") or "").strip():
            continue  # outside a dispatch, only a bare "Stream-safety:" line opens a block
        if not fenced and region.in_fence(match.start()):
            continue
        yield match


def has_block(region: Region) -> bool:
    """The prompt's own block: one outside fenced examples, or an imported clause."""
    if next(headers(region, fenced=False), None) is not None:
        return True
    return region.is_template and _TEMPLATE_REFERENCE.search(region.doc.text) is not None


def missing_parts(region: Region, header: re.Match[str]) -> list[str]:
    text = region.lower
    limit = min(len(text), header.end() + 1500)
    end_match = _BLOCK_END.search(text, header.end(), limit)
    block = text[header.start() : end_match.start() if end_match else limit]
    return [label for label, pattern, words in PARTS if not _has(block, pattern, words)]


def _has(block: str, pattern: re.Pattern[str], words: tuple[str, ...]) -> bool:
    """``pattern.search(block)``, started at the first of ``words`` (none: no match).

    A pattern that opens with ``\\b`` gets no literal-prefix speed-up from the
    regex engine, which then tries every position of the block. ``\\b`` still
    sees the character before the start position, so the answer is the same.
    """
    found = [at for at in map(block.find, words) if at >= 0]
    return bool(found) and pattern.search(block, min(found)) is not None


# The three rules as people write them without the pack's block: "one short line before
# every tool call", "announce each step in one line before the tool call that does it".
_PROSE_PROGRESS = lazy(
    r"\bprogress\b|\bbefore\b[^.\n]{0,40}?\bcalls?\b|\bcalls?\b[^.\n]{0,60}?\bbefore\b"
)
_PROSE_LINE = lazy(r"\b(?:one|a|single|short)[ -](?:short[ -])?(?:line|sentence)\b|\bannounce\b")


def in_prose(region: Region) -> bool:
    """Whether the prompt states all three rules in its own words, with no block.

    Accepted only where the kind was inferred: a prompt written elsewhere has
    no reason to know the pack's ``Stream-safety:`` label, and what keeps the
    stream alive is the three rules, however they are worded.
    """
    lower = region.lower
    if not (_PROSE_PROGRESS.search(lower) and _PROSE_LINE.search(lower) or "progress" in lower):
        return False
    return all(_has(lower, pattern, words) for _, pattern, words in PARTS[1:])


def _check_missing(region: Region) -> Iterator[Hit]:
    if not has_block(region) and not (region.inferred and in_prose(region)):
        yield region.anchor()


def _check_incomplete(region: Region) -> Iterator[Hit]:
    # Inside a dispatch, a quoted prompt (say, the one an executor hands its
    # workers) must be complete too; elsewhere fenced code is an example.
    for header in headers(region, fenced=region.kind in DISPATCH_KINDS):
        missing = missing_parts(region, header)
        if missing:
            yield region.at(
                header.start(),
                f"the Stream-safety block lacks {' and '.join(missing)}; "
                "add it (`dispatch-kit rule DK102` shows the full block)",
            )


_TASK = """[Execute] Task `tokenizer`: accept tabs as whitespace

Working directory: src/parser

Make `tokenize()` in tokenizer.py treat a tab like a space.

## Exit criteria
1. `python3 -m pytest -q tests/test_tokenizer.py`
"""

MISSING = Rule(
    code="DK101",
    name="missing-stream-safety",
    severity="error",
    message="add the Stream-safety: block (progress line before each tool call, no call over "
    "60 s, offset/limit after 500 lines); `dispatch-kit lint --fix` inserts it",
    rationale="""\
Harnesses kill a subagent whose stream goes quiet: an agent that runs four
silent tool calls, or one call that takes minutes, looks dead and is cut off,
and the orchestrator then redoes the work itself. Every [Execute] and [Plan]
dispatch therefore carries the Stream-safety block, whose three rules keep the
stream visibly alive. Inspection dispatches ([Inspect], a single read and an
answer, or fewer than three calls) are exempt. A template satisfies the rule by
importing the shared stream-safety clause. An unmarked prompt that reads as a
work order or a plan gets the rule too, and may state the three rules in its
own words instead of the block.""",
    applies_to="[Execute] and [Plan] dispatch prompts and templates, and unmarked prompts read "
    "as either",
    bad=Example(_TASK),
    good=Example(_TASK + "\n" + BLOCK),
    kinds=STREAM_KINDS,
    check=_check_missing,
    fixable=True,
)

INCOMPLETE = Rule(
    code="DK102",
    name="incomplete-stream-safety",
    severity="error",
    message="give the Stream-safety block all three rules: progress line, 60 s per call, "
    "offset/limit after 500 lines",
    rationale="""\
Each of the three rules closes a different way to die: silence between calls
(progress line), one call longer than the idle timeout (60 s budget), and a
read so large it floods the context (offset/limit after 500 lines). A block
that keeps only some of them still lets the others kill the run. The check
runs wherever a block appears, including shared clause files.""",
    applies_to="any prompt, template or agent file that contains a Stream-safety: block",
    bad=Example(
        _TASK
        + """
Stream-safety:
1. Before each tool call, print a progress line: one sentence, at most 80 characters.
"""
    ),
    good=Example(_TASK + "\n" + BLOCK),
    kinds=ALL_KINDS,
    check=_check_incomplete,
)

RULES = (MISSING, INCOMPLETE)
