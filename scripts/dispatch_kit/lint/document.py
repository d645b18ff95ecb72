"""A file being linted, and the prompt it carries, with the lookups every rule shares.

Rules are small functions over these two objects. Anything more than one rule
needs (lower-cased text, line starts, sentences, parsed frontmatter) is
computed once, lazily, here, so adding a rule does not add a pass over the
file and a file no rule looks at costs almost nothing.
"""

from __future__ import annotations

import bisect
import os
from itertools import accumulate

from dispatch_kit.lint import frontmatter, kinds, prose, suppress
from dispatch_kit.lint.record import TYPE_CHECKING
from dispatch_kit.lint.registry import Hit

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

STYLE_BY_FILE_KIND = {
    "prompt": "markdown",
    "document": "markdown",
    "skill": "markdown",
    "agent": "markdown",
    "template": "jinja",
    "plan": "yaml",
    "manifest": "json",
}
TEXT_KINDS = ("prompt", "document", "skill", "agent", "template")


class cached:  # noqa: N801 - used like functools.cached_property
    """``functools.cached_property`` without the lock Python 3.11 takes on every first access.

    3.12 dropped that lock; on 3.11 it cost a thousand-file lint ~6 ms for
    nothing, since a document is only ever read by the thread that made it.
    The value lands in the instance's ``__dict__``, which later reads find
    before this (non-data) descriptor.
    """

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class Document:
    """One file (or stdin, or a hook's prompt): its text, file kind and directives."""

    def __init__(
        self,
        text: str,
        path: str,
        file_kind: str,
        *,
        fs_path: str | Path | None = None,
        base_dir: str | Path | None = None,
        agent: str | None = None,
        default_kind: str = "unknown",
    ) -> None:
        self.text = text
        self.path = path
        self.file_kind = file_kind
        self._fs_path = fs_path
        self._base_dir = base_dir
        self.style = STYLE_BY_FILE_KIND[file_kind]
        self.directives = suppress.parse(text, self.style)
        self.cache: dict[str, Any] = {}
        self.frontmatter = (
            frontmatter.split(text)
            if file_kind in ("prompt", "document", "skill", "agent")
            else None
        )
        self.region: Region | None = None
        if file_kind in TEXT_KINDS:
            self.region = self._region(agent, default_kind)

    @property
    def fs_name(self) -> str | None:
        """The file's path as a string (None for stdin): what rules that only need
        ``os.path`` use, so that linting Markdown never imports pathlib."""
        return None if self._fs_path is None else os.fspath(self._fs_path)

    @cached
    def fs_path(self) -> Path | None:
        """The file as a Path, built only for the few rules that need one.

        The walk hands over plain strings: a path object per file was a visible
        share of linting a thousand files that no rule looked at.
        """
        if self._fs_path is None:
            return None
        from pathlib import Path  # most runs never need it: ~4 ms of a cold start

        return Path(self._fs_path)

    @property
    def given_base_dir(self) -> bool:
        """Whether the caller named the base folder (else it is the file's own)."""
        return self._base_dir is not None

    @cached
    def base_dir(self) -> str | None:
        """The folder relative names are resolved from: the given one, else the file's."""
        if self._base_dir is not None:
            return os.fspath(self._base_dir)
        fs_name = self.fs_name
        return None if fs_name is None else os.path.dirname(fs_name) or "."

    def _region(self, agent: str | None, default_kind: str) -> Region:
        masked, spans = (
            kinds.mask_template(self.text) if self.file_kind == "template" else (self.text, [])
        )
        fm = self.frontmatter
        kind, named, anchor, confidence = kinds.detect(
            masked,
            self.file_kind,
            self.directives,
            fm.body_line if fm else 1,
            fm.body_offset if fm else 0,
            default_kind,
        )
        return Region(self, masked, kind, agent or named, anchor, confidence, spans, default_kind)

    @cached
    def line_starts(self) -> list[int]:
        """Offset of each line's first character (lines end at "\\n" only)."""
        # One split and running sums in C: a find() per line was a visible share of large runs.
        ends = accumulate(map(len, self.text.split("\n")[:-1]), initial=0)
        return [end + line for line, end in enumerate(ends)]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def at(self, offset: int, message: str | None = None) -> Hit:
        line, column = self.position(offset)
        return line, column, message


class Region:
    """The prompt a document carries: text (template tags masked), kind, target agent."""

    def __init__(
        self,
        doc: Document,
        text: str,
        kind: str,
        agent: str | None,
        anchor_line: int,
        confidence: str | None,
        expression_spans: list[tuple[int, int]],
        default_kind: str = "unknown",
    ) -> None:
        self.doc = doc
        self.text = text
        self.kind = kind
        self.agent = agent.split(":")[-1] if agent else None  # "plugin:agent" -> "agent"
        self.anchor_line = anchor_line
        # kinds.EXPLICIT, kinds.SURE, kinds.LIKELY, or None for the default kind
        self.confidence = confidence
        self.expression_spans = expression_spans
        self.default_kind = default_kind

    @property
    def explicit(self) -> bool:
        """A marker or ``kind=`` directive said what the prompt is."""
        return self.confidence == kinds.EXPLICIT

    @property
    def inferred(self) -> bool:
        """The kind was read from the prompt's content, not given."""
        return self.confidence in (kinds.SURE, kinds.LIKELY)

    def rests_on_inference(self, rule_kinds: frozenset[str]) -> bool:
        """Whether a rule of ``rule_kinds`` runs here only because the kind was inferred,
        and from a likely reading: the hook reports such a finding as a warning."""
        return self.confidence == kinds.LIKELY and self.default_kind not in rule_kinds

    @property
    def is_template(self) -> bool:
        return self.doc.file_kind == "template"

    @cached
    def lower(self) -> str:
        return self.text.lower().replace("\u2019", "'")

    @cached
    def fenced(self) -> list[tuple[int, int]]:
        """Spans of fenced code blocks (examples inside the prompt)."""
        return suppress.fenced_spans(self.text)

    def in_fence(self, offset: int) -> bool:
        return any(a <= offset < b for a, b in self.fenced)

    @cached
    def flat(self) -> str:
        """``lower`` with line breaks as spaces: a quick superset test for sentence patterns."""
        return self.lower.replace("\n", " ")

    @cached
    def sentences(self) -> list[prose.Sentence]:
        return prose.sentences(self.lower)

    @cached
    def sentence_starts(self) -> list[int]:
        return [sentence.start for sentence in self.sentences]

    @cached
    def paragraphs(self) -> dict[int, list[prose.Sentence]]:
        """Sentences grouped by the paragraph (or list item) they belong to."""
        groups: dict[int, list[prose.Sentence]] = {}
        for sentence in self.sentences:
            groups.setdefault(sentence.unit, []).append(sentence)
        return groups

    def sentence_index(self, sentence: prose.Sentence) -> int:
        return bisect.bisect_left(self.sentence_starts, sentence.start)

    @cached
    def first_line(self) -> str:
        """The line holding the kind marker (template tags masked), without its newline."""
        starts = self.doc.line_starts
        index = self.anchor_line - 1
        if not 0 <= index < len(starts):
            return ""
        end = starts[index + 1] - 1 if index + 1 < len(starts) else len(self.text)
        return self.text[starts[index] : end].rstrip("\r")

    def mentions(self, words: tuple[str, ...]) -> bool:
        """Cheap prefilter: does the lower-cased text contain any of ``words``?

        Splitting into sentences and running negation-aware patterns costs far
        more than a few substring tests, and most prompts give most rules
        nothing to look at.
        """
        lower = self.lower
        for word in words:
            if word in lower:
                return True
        return False

    def at(self, offset: int, message: str | None = None) -> Hit:
        return self.doc.at(offset, message)

    def anchor(self, message: str | None = None) -> Hit:
        return self.anchor_line or 1, 1, message

    def has_expression_between(self, start: int, end: int) -> bool:
        return any(start <= a < end for a, _ in self.expression_spans)
