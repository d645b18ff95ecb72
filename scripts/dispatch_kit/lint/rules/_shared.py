"""Pieces several rule families share: example building blocks and text sections."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.record import TYPE_CHECKING
from dispatch_kit.lint.registry import Rule

if TYPE_CHECKING:
    from typing import Any

# A complete stream-safety block in example wording: rules check for the three
# rules, not for one exact sentence, so examples need not copy the clause.
BLOCK = """Stream-safety:
1. Before each tool call, print a progress line: one sentence, at most 80 characters.
2. Keep every tool call under 60 seconds; split longer work into several calls.
3. When a read returns more than 500 lines, narrow the next read with offset/limit.
"""

# A request for Bash work: commit, push, run tests or commands. Every match
# contains one of BASH_WORDS. DK401 (an agent without Bash asked for it) and
# DK103 (an unmarked dispatch asking for it) share it.
BASH_WORK = lazy(
    r"\bgit[ \t]+(?:commit|push|add|rebase|merge|tag|checkout|reset|stash|cherry-pick)\b"
    r"|\bcommit\b(?=[ \t]+(?:it|them|this|that|the|your|all|each|every|changes?|work|files?|"
    r"edits?|and|with|to|once|when|after|before|only|on)\b|[ \t]*[.,;:)]|[ \t]*$)"
    r"|\bpush\b(?=[ \t]+(?:it|them|the|your|to|changes?|commits?|branch|and|origin|upstream)\b"
    r"|[ \t]*[.,;:)]|[ \t]*$)"
    r"|\b(?:re-?)?run\b[^.]{0,40}?\b(?:tests?|test suite|commands?|scripts?|builds?|linters?|"
    r"checks?|criteria|criterion|migrations?|dry[- ]runs?|make|npm|pytest|python3?|shell)\b"
    r"|\b(?:re-?)?run[ \t]+`"
    r"|\bexecute\b[^.]{0,30}?\b(?:commands?|scripts?|tests?|shell)\b"
)
BASH_WORDS = ("git", "commit", "push", "run", "execute")


def family(**shared: Any) -> Callable[..., Rule]:
    """A :class:`Rule` constructor with the fields a family of rules has in common.

    Rules that check one kind of file state where they apply (``applies_to``
    for the docs, ``kinds`` and ``scope`` for the engine) and often share a good
    example; saying that once per family keeps the prose and the kinds from
    drifting apart between sibling rules. A rule may still override any field.
    """
    return partial(Rule, **shared)


HEADING = lazy(r"^[ \t]{0,3}#{1,6}(?:[ \t]|$)", re.M)
_BLANK_THEN_TEXT = lazy(r"\n[ \t]*\n(?=[ \t]{0,3}(?![-*+][ \t]|\d{1,3}[.)][ \t]|`{3}|~{3})\S)")
# "Stream-safety:", "Rules:": a short line ending in a colon opens the next labelled part
_BLANK_THEN_LABEL = lazy(
    r"\n[ \t]*\n(?=[ \t]{0,3}(?![-*+][ \t]|\d{1,3}[.)][ \t])"
    r"[^\s][^\n]{0,60}:[*_]{0,2}[ \t]*(?:\n|$))"
)


def section_end(text: str, start: int, label_is_heading: bool) -> int:
    """End offset of the section whose label line ends at ``start``.

    A heading's section runs to the next heading or the next label line
    ("Stream-safety:"); a plain label ("Exit criteria:") also ends at a blank
    line followed by ordinary text.
    """
    heading = HEADING.search(text, start)
    end = heading.start() if heading else len(text)
    label = _BLANK_THEN_LABEL.search(text, start, end)
    if label:
        end = label.start()
    if not label_is_heading:
        gap = _BLANK_THEN_TEXT.search(text, start, end)
        if gap:
            end = gap.start()
    return end
