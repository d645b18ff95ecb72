"""``dispatch-kit:`` directives in comments: suppressions, and the kind and agent markers.

One syntax in three comment styles, because prompts live in Markdown, Jinja
and YAML files::

    <!-- dispatch-kit: ignore-next-line DK101 -->      Markdown (and rendered prompts)
    {# dispatch-kit: ignore-file DK603, DK604 #}       Jinja templates
    # dispatch-kit: ignore-next-line invalid-plan      YAML plan files
    <!-- dispatch-kit: kind=execute agent=domain-editor -->

A suppression names rules by code or name; with none it covers every rule.
Directives inside fenced code blocks or inline code spans are examples, not
directives. A
suppression that suppresses nothing is itself reported (DK901), so stale ones
do not pile up and hide the next real finding.
"""

from __future__ import annotations

import bisect
import re

from dispatch_kit.lint.patterns import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

# Where a directive opens; its body and closing are found with str.find (see
# _bodies). As one regex each (``<!--\s*dispatch-kit:\s*(.*?)\s*-->``), every
# unclosed opener rescanned the rest of its line: 160 KB of them took 31 s.
MARKDOWN = lazy(r"<!--\s*dispatch-kit:")
JINJA = lazy(r"\{#-?\s*dispatch-kit:")
HASH = lazy(r"(?:^|(?<=\s))#[ \t]*dispatch-kit:", re.M)
STYLES = {
    "markdown": (MARKDOWN,),
    "jinja": (JINJA,),  # an HTML comment in a template is output, not a directive
    "yaml": (HASH,),
    "json": (),
}
_CLOSERS = {MARKDOWN: "-->", JINJA: "#}", HASH: "\n"}
ACTIONS = ("ignore-next-line", "ignore-file")
SETTINGS = ("kind", "agent")
KINDS = ("execute", "plan", "inspect", "executor", "retry", "dispatch", "none")
KIND_ALIASES = {"worker": "execute"}
_FENCE = lazy(r"^[ \t]{0,3}(`{3,}|~{3,})(.*)$", re.M)
_TOKEN_SPLIT = lazy(r"[\s,]+")


class Directive:
    """One ``dispatch-kit:`` comment; ``used`` fills in as findings are suppressed."""

    __slots__ = ("line", "column", "action", "codes", "settings", "problems", "used")

    def __init__(self, line: int, column: int, action: str) -> None:
        self.line = line
        self.column = column
        self.action = action  # "ignore-next-line" | "ignore-file" | "set"
        self.codes: tuple[str, ...] | None = None  # None: every rule
        self.settings: dict[str, str] = {}
        self.problems: list[str] = []
        self.used: set[str] = set()  # codes it suppressed

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


def parse(text: str, style: str) -> list[Directive]:
    """Every directive in ``text`` (fast path: none unless the text says ``dispatch-kit:``)."""
    if "dispatch-kit:" not in text:
        return []
    patterns = STYLES.get(style, (MARKDOWN,))
    fenced = fenced_spans(text) if style in ("markdown", "jinja") else []
    fence_starts = [a for a, _ in fenced]
    found: list[Directive] = []
    for pattern in patterns:
        line, counted = 1, 0  # line number of offset `counted`, advanced as matches come
        ticks_line, ticks_at, ticks = -1, 0, 0  # backticks on the current line before ticks_at
        for start, body in _bodies(text, pattern):
            i = bisect.bisect_right(fence_starts, start) - 1
            if i >= 0 and start < fenced[i][1]:
                continue
            line_start = text.rfind("\n", 0, start) + 1
            if line_start != ticks_line:
                ticks_line, ticks_at, ticks = line_start, line_start, 0
            ticks += text.count("`", ticks_at, start)
            ticks_at = start
            if ticks % 2:
                continue  # inside an inline code span: quoted, not meant
            line += text.count("\n", counted, start)
            counted = start
            found.append(_directive(body, line, start - line_start + 1))
    found.sort(key=lambda d: (d.line, d.column))
    return found


def _bodies(text: str, opener: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    """(offset, body) of each directive, in time linear in ``text``.

    Same matches as the one-regex forms these replaced: Markdown's body stays on
    its line (whitespace, line breaks included, may come before ``-->``), Jinja's
    may span lines and may end with ``-``, YAML's runs to the end of its line.
    """
    closer = _CLOSERS[opener]
    pos = 0
    close_from, close_at = -1, -1  # the last find of the closer, reused while still ahead
    line_from, line_at, blank_after = -1, -1, True  # the same for the line break before it
    while True:
        match = opener.search(text, pos)
        if match is None:
            return
        start, body_start = match.start(), match.end()
        while body_start < len(text) and text[body_start].isspace() and (
            closer != "\n" or text[body_start] in " \t"
        ):
            body_start += 1
        if closer == "\n":
            end = text.find("\n", body_start)
            end = len(text) if end < 0 else end
            yield start, text[body_start:end].rstrip(" \t")
            pos = max(end, match.end())
            continue
        if not close_from <= body_start <= close_at:
            close_from, close_at = body_start, text.find(closer, body_start)
        if close_at < 0:
            return  # no closer anywhere after: no later opener can close either
        if closer == "#}":
            body = text[body_start:close_at]
            yield start, (body[:-1] if body.endswith("-") else body).rstrip()
            pos = close_at + 2
            continue
        if not line_from <= body_start <= line_at:
            line_from, line_at = body_start, text.find("\n", body_start, close_at)
            blank_after = line_at < 0 or text[line_at:close_at].isspace()
        if not blank_after:  # the body would cross a line: not a directive; try the next opener
            pos = start + 1
            continue
        body = text[body_start:close_at if line_at < 0 else line_at]
        yield start, body.rstrip()
        pos = close_at + 3


def _directive(body: str, line: int, column: int) -> Directive:
    from dispatch_kit.lint import registry

    tokens = [t for t in _TOKEN_SPLIT.split(body.strip()) if t]
    if tokens and tokens[0] in ACTIONS:
        directive = Directive(line, column, tokens[0])
        if len(tokens) > 1:
            codes = []
            for token in tokens[1:]:
                rule = registry.find(token)
                if rule is None:
                    directive.problems.append(f"unknown rule '{token}' in suppression")
                else:
                    codes.append(rule.code)
            directive.codes = tuple(codes)
        return directive
    directive = Directive(line, column, "set")
    if not tokens:
        directive.problems.append("empty dispatch-kit directive")
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or key not in SETTINGS or not value:
            directive.problems.append(
                f"unknown dispatch-kit directive '{token}'; expected ignore-next-line, "
                "ignore-file, kind=KIND or agent=NAME"
            )
            continue
        if key == "kind":
            value = KIND_ALIASES.get(value.lower(), value.lower())
            if value not in KINDS:
                directive.problems.append(
                    f"unknown prompt kind '{value}'; expected one of {', '.join(KINDS)}"
                )
                continue
        directive.settings[key] = value
    return directive


def fenced_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of fenced code blocks (examples, not directives)."""
    if "```" not in text and "~~~" not in text:
        return []
    spans = []
    opened: tuple[int, str] | None = None
    for match in _FENCE.finditer(text):
        fence = match.group(1)
        if opened is None:
            opened = (match.start(), fence)
        elif (
            fence[0] == opened[1][0] and len(fence) >= len(opened[1]) and not match.group(2).strip()
        ):
            spans.append((opened[0], match.end()))
            opened = None
    if opened is not None:
        spans.append((opened[0], len(text)))
    return spans
