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

import re

from dispatch_kit.lint.patterns import lazy

MARKDOWN = lazy(r"<!--\s*dispatch-kit:\s*(.*?)\s*-->")
JINJA = lazy(r"\{#-?\s*dispatch-kit:\s*(.*?)\s*-?#\}", re.S)
HASH = lazy(r"(?:^|(?<=\s))#[ \t]*dispatch-kit:[ \t]*(.*?)[ \t]*$", re.M)
STYLES = {
    "markdown": (MARKDOWN,),
    "jinja": (JINJA,),  # an HTML comment in a template is output, not a directive
    "yaml": (HASH,),
    "json": (),
}
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
    found: list[Directive] = []
    for pattern in patterns:
        line, counted = 1, 0  # line number of offset `counted`, advanced as matches come
        for match in pattern.finditer(text):
            start = match.start()
            if any(a <= start < b for a, b in fenced):
                continue
            line_start = text.rfind("\n", 0, start) + 1
            if text.count("`", line_start, start) % 2:
                continue  # inside an inline code span: quoted, not meant
            line += text.count("\n", counted, start)
            counted = start
            found.append(_directive(match.group(1), line, start - line_start + 1))
    found.sort(key=lambda d: (d.line, d.column))
    return found


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
