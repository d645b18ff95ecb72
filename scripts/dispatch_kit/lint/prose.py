"""Read a prompt the way its recipient will: sentences, and whether each one forbids or asks.

Most dispatch rules look for an instruction ("commit", "wait for the workers",
"start a server"), and prompts are full of the same words in prohibitions
("do not commit", "never wait"). A rule that ignored negation would flag every
well-written prompt, and a false positive is a bug. So text is cut into
logical units (a paragraph with its wrapped lines joined, one list item, one
heading), units into sentences, and each sentence knows whether it sits under
a prohibition: a heading such as "Never" or a lead-in line such as "Do not:".
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dispatch_kit.lint.document import Region

NEGATION = re.compile(
    r"\b(?:not|never|no|none|nothing|don't|doesn't|mustn't|shouldn't|won't|cannot|can't|"
    r"avoid|avoids|without|instead of|rather than|nor|forbidden|prohibited|refrain from)\b"
)
_HYPOTHETICAL = re.compile(r"\b(?:would|could|might)\b")
# A negation governs its own clause; a new clause starts after these.
_CLAUSE_RESET = re.compile(r"[;:]|,\s*(?:and|but|then|so)\b|\bbut\b|\bthen\b|\bhowever\b")
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_ITEM = re.compile(r"([ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"[.!?](?=\s)")
_SPECIAL_STARTS = frozenset("#-*+`~|0123456789")  # headings, list items, fences, tables


class Sentence(NamedTuple):
    start: int  # offset of the first character in the region's text
    text: str  # lower-cased, newlines turned into spaces
    # Not a request whatever it says: under a "never"/"do not:" heading or
    # lead-in, or a table row (tables describe; they do not instruct).
    under_prohibition: bool
    unit: int  # index of the paragraph, list item or heading it belongs to

    def negated_at(self, index: int) -> bool:
        """Whether the words at ``index`` (in the sentence) are not asked for.

        They are not when forbidden ("do not commit"), or hypothetical ("you
        could start a server, but...", "waiting would run into the timeout").
        """
        if self.under_prohibition:
            return True
        text = self.text
        cut = 0
        for match in _CLAUSE_RESET.finditer(text, 0, index):
            cut = match.end()
        if NEGATION.search(text, cut, index) is not None:
            return True
        end = _CLAUSE_RESET.search(text, index + 1)
        return _HYPOTHETICAL.search(text, cut, end.start() if end else len(text)) is not None


def sentences(lower: str) -> list[Sentence]:
    """Split lower-cased text into sentences carrying their prohibition context."""
    found: list[Sentence] = []
    for index, (start, end, prohibited) in enumerate(_units(lower)):
        unit = lower[start:end].replace("\n", " ")
        if ". " not in unit and "! " not in unit and "? " not in unit:  # one sentence
            text = unit.strip()
            if text:
                found.append(Sentence(start + unit.index(text[0]), text, prohibited, index))
            continue
        pos = 0
        for match in _SENTENCE_END.finditer(unit):
            _add(found, unit, start, pos, match.end(), prohibited, index)
            pos = match.end()
        _add(found, unit, start, pos, len(unit), prohibited, index)
    return found


def _add(
    found: list[Sentence], unit: str, base: int, a: int, b: int, prohibited: bool, index: int
) -> None:
    piece = unit[a:b]
    stripped = piece.lstrip()
    if stripped.strip():
        lead = len(piece) - len(stripped)
        found.append(Sentence(base + a + lead, stripped.rstrip(), prohibited, index))


def _units(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, under_prohibition) of each paragraph, list item, heading and code line."""
    section_neg = False  # the current heading forbids ("## Never", "## Don'ts")
    lead_neg = False  # the last lead-in line forbids ("Do not:"), for the items below it
    lead_indent = -1
    start = -1
    end = -1
    unit_neg = False
    unit_indent = -1
    in_fence = ""
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start = offset
        offset += len(line)
        body = line.rstrip("\r\n")
        first = body.lstrip()[:1]
        if in_fence:
            if body.strip().startswith(in_fence):
                in_fence = ""
            elif first:
                yield line_start, line_start + len(body), section_neg or lead_neg
            continue
        if first and first not in _SPECIAL_STARTS:  # plain text: starts or continues a paragraph
            if start < 0:
                lead_neg, lead_indent = False, -1
                start, unit_indent, unit_neg = line_start, -1, section_neg
            end = line_start + len(body)
            continue
        fence = _FENCE.match(body) if first in "`~" else None
        if fence:
            if start >= 0:
                yield start, end, unit_neg
                start = -1
            in_fence = fence.group(1)[0] * 3
            continue
        if not body.strip():
            if start >= 0:
                lead_neg, lead_indent = _lead(text, start, end, unit_indent, lead_neg, lead_indent)
                yield start, end, unit_neg
                start = -1
            continue
        if _HEADING.match(body):
            if start >= 0:
                yield start, end, unit_neg
                start = -1
            section_neg = NEGATION.search(body) is not None
            lead_neg, lead_indent = False, -1
            yield line_start, line_start + len(body), False
            continue
        if first == "|":  # a table row: its own unit, never a request
            if start >= 0:
                yield start, end, unit_neg
                start = -1
            yield line_start, line_start + len(body), True
            continue
        item = _ITEM.match(body)
        if item:
            if start >= 0:
                lead_neg, lead_indent = _lead(text, start, end, unit_indent, lead_neg, lead_indent)
                yield start, end, unit_neg
            indent = len(item.group(1).expandtabs(4))
            if lead_neg and indent <= lead_indent:
                lead_neg, lead_indent = False, -1
            start = line_start + item.end()
            end = line_start + len(body)
            unit_indent = indent
            unit_neg = section_neg or lead_neg
            continue
        if start >= 0:  # a wrapped line continues the unit
            end = line_start + len(body)
            continue
        # a new paragraph: it ends any "do not:" list above it
        lead_neg, lead_indent = False, -1
        start, end, unit_indent, unit_neg = line_start, line_start + len(body), -1, section_neg
    if start >= 0:
        yield start, end, unit_neg


def _lead(
    text: str, start: int, end: int, indent: int, lead_neg: bool, lead_indent: int
) -> tuple[bool, int]:
    """After a unit: does it introduce a list of prohibitions ("Never do these:")?"""
    unit = text[start:end].rstrip()
    if unit.endswith(":") and NEGATION.search(unit):
        return True, indent
    return lead_neg, lead_indent


Words = tuple["str | re.Pattern[str]", ...]


def matches(
    region: Region,
    pattern: re.Pattern[str],
    words: Words,
    anchored: bool = False,
    reach: tuple[int, int] | None = None,
) -> Iterator[tuple[Sentence, re.Match[str]]]:
    """(sentence, first match) for each sentence where ``pattern`` matches.

    ``words`` are literals (or cheap patterns) at least one of which every
    match contains: a sentence without any is skipped without running the
    pattern, and a text without any is not even split into sentences.
    Substring tests cost a fraction of a regular-expression search, and most
    sentences of most prompts give a rule nothing to look at. Unless the
    pattern is ``anchored`` to sentence starts, a search of the text around
    the words (``reach`` characters before and after) comes next: no match
    there, no match in any sentence.
    """
    lower = region.lower
    offsets: list[int] = []
    for word in words:
        if not isinstance(word, str):
            offsets.extend(m.start() for m in word.finditer(lower))
            continue
        found = lower.find(word)
        while found >= 0:
            offsets.append(found)
            found = lower.find(word, found + 1)
    if not offsets:
        return
    if not anchored and not _near(region.flat, pattern, offsets, reach or (_REACH, _REACH)):
        return
    sentence_list = region.sentences
    starts = region.sentence_starts
    for index in sorted({bisect_right(starts, offset) - 1 for offset in offsets}):
        if index < 0:
            continue
        sentence = sentence_list[index]
        match = pattern.search(sentence.text)
        if match is not None:
            yield sentence, match


# Every rule pattern matches fewer characters than this around its key word.
_REACH = 320


def _near(text: str, pattern: re.Pattern[str], offsets: list[int], reach: tuple[int, int]) -> bool:
    """Whether ``pattern`` matches within reach of one of ``offsets`` (a superset test).

    Searching a few windows around the key words costs far less than scanning
    the whole prompt with a pattern full of alternatives.
    """
    offsets.sort()
    length = len(text)
    before, after = reach
    lo = hi = -1
    for offset in offsets:
        start, end = max(0, offset - before), min(length, offset + after)
        if start <= hi:
            hi = end
            continue
        if hi >= 0 and pattern.search(text, lo, hi):
            return True
        lo, hi = start, end
    return hi >= 0 and pattern.search(text, lo, hi) is not None


def find_asked(
    region: Region,
    pattern: re.Pattern[str],
    words: Words,
    anchored: bool = False,
    reach: tuple[int, int] | None = None,
) -> Iterator[tuple[int, str]]:
    """(offset, matched text) of each sentence's match when it is asked for, not forbidden."""
    for sentence, match in matches(region, pattern, words, anchored, reach):
        if not sentence.negated_at(match.start()):
            yield sentence.start + match.start(), match.group(0)
            continue
        for later in pattern.finditer(sentence.text, match.end()):
            if not sentence.negated_at(later.start()):
                yield sentence.start + later.start(), later.group(0)
                break
