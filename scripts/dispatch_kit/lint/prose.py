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
from collections.abc import Callable, Iterable, Iterator

from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from dispatch_kit.lint.document import Region

NEGATION = lazy(
    r"\b(?:not|never|no|none|nothing|don't|doesn't|mustn't|shouldn't|won't|cannot|can't|"
    r"avoid|avoids|without|instead of|rather than|nor|forbidden|prohibited|refrain from)\b"
)
_HYPOTHETICAL = lazy(r"\b(?:would|could|might)\b")
# A negation governs its own clause; a new clause starts after these ("Don't commit —
# send me the diff so I can commit it": the dash ends the prohibition).
_CLAUSE_RESET = lazy(
    r"[;:]|,\s*(?:and|but|then|so)\b|\bbut\b|\bthen\b|\bhowever\b|[ \t][\u2013\u2014][ \t]"
)
_HEADING = lazy(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_ITEM = lazy(r"([ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+")
_FENCE = lazy(r"[ \t]{0,3}(`{3,}|~{3,})")
_SENTENCE_END = lazy(r"[.!?](?=\s)")
_SPECIAL_STARTS = frozenset("#-*+`~|0123456789")  # headings, list items, fences, tables


class Sentence(Record):
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
    offsets = _offsets(region.lower, words)
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


_SENTENCE_MARK = lazy(r"[.!?]")


def all_negated(
    region: Region,
    anywhere: re.Pattern[str],
    words: Words = (),
    starts: Callable[[str, int], Iterable[int]] | None = None,
) -> bool:
    """Whether every place ``anywhere`` matches the flattened text is plainly forbidden.

    ``anywhere`` must match wherever the rule's own pattern matches inside a
    sentence (the same pattern, minus look-arounds that would see past the
    sentence). Each place it could start is then tested for a negation earlier
    on its line, in the same sentence and clause ("Do not start servers"). When
    all are, no sentence can hold an unforbidden match and the caller skips
    sentence splitting, the dearest step of a prompt's lint; when one is not,
    the caller runs its full, exact check.

    Without ``starts`` every start in the text is tried. With it, only the
    places ``starts(flat, offset)`` gives for each offset of ``words`` are:
    every match holds one of the words, and the caller knows how far before
    it the match can start. A few anchored matches cost far less than a search
    of the whole text.
    """
    flat = region.flat
    lower = region.lower
    offsets = _offsets(flat, words) if starts is not None else []
    if len(offsets) > _MAX_CANDIDATES:
        starts = None  # one search costs less than this many windows, and finds the same
    if starts is None:
        match = anywhere.search(flat)
        while match is not None:
            at = match.start()
            if not _negated_before(lower, at):
                return False
            match = anywhere.search(flat, at + 1)  # every start, overlapping ones too
        return True
    # Offsets in the flattened text: a key word broken over two lines still counts.
    for offset in offsets:
        for at in starts(flat, offset):
            if anywhere.match(flat, at) is not None and not _negated_before(lower, at):
                return False
    return True


# How many key words all_negated tries windows around before it searches instead.
# Every match holds a key word, so both find the same; windows are cheaper on
# a prompt's few key words, one search on a prompt that repeats one 150,000
# times ("server server ...": 0.9 s of windows against 0.05 s of search).
_MAX_CANDIDATES = 2048


def _offsets(text: str, words: Words) -> list[int]:
    """Where each of ``words`` (literals or patterns) occurs in ``text``."""
    offsets: list[int] = []
    for word in words:
        if not isinstance(word, str):
            offsets.extend(m.start() for m in word.finditer(text))
            continue
        found = text.find(word)
        while found >= 0:
            offsets.append(found)
            found = text.find(word, found + 1)
    return offsets


# How far before a match _negated_before looks for its negation. It is a
# sufficient test (a miss sends the caller to the exact sentence check), so a
# bound only costs time on a clause this long; unbounded, every key word of a
# 1 MB line rescanned the line from its start.
_NEGATION_REACH = 512


def _negated_before(lower: str, at: int) -> bool:
    """A sufficient test for ``Sentence.negated_at``: a negation before ``at`` on its line
    with no sentence end and no clause break in between (so it is in the same clause)."""
    last = None
    line_start = lower.rfind("\n", max(0, at - _NEGATION_REACH), at) + 1
    if line_start == 0 and at > _NEGATION_REACH:
        return False  # no line start within reach: too long a clause to judge cheaply
    for found in NEGATION.finditer(lower, line_start, at):
        last = found
    if last is None:
        return False
    start = last.start()
    return (
        _SENTENCE_MARK.search(lower, start, at) is None
        and _CLAUSE_RESET.search(lower, start, at) is None
    )
