"""What a prompt is: execute, plan, inspect, executor, retry, a generic dispatch, or none.

Explicit markers decide first: a ``[Execute]``-style tag at the start of the
first line of content, or a ``kind=`` directive in the first five lines (after
any frontmatter). Only a plain prompt file or template without either is
classified from its content (:mod:`dispatch_kit.lint.infer`), with a
confidence: "sure" for shapes only one kind has, "likely" for the rest. A
prompt nothing identifies is "unknown" and only the rules that hold for every
text run on it.
"""

from __future__ import annotations

import re

from dispatch_kit.lint import infer as inference
from dispatch_kit.lint import suppress
from dispatch_kit.lint.patterns import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

DISPATCH_KINDS = frozenset({"execute", "plan", "executor", "retry", "dispatch"})
PROMPT_KINDS = DISPATCH_KINDS | {"inspect"}
# What content alone can make an unmarked prompt (lint/infer.py).
INFERRED_KINDS = PROMPT_KINDS - {"dispatch"}
ALL_KINDS = PROMPT_KINDS | {"none", "unknown"}
HEADER_LINES = 5

MARKER = lazy(r"[ \t]*(?:#{1,6}[ \t]+)?(?:\*\*)?\[(execute|plan|inspect|executor|retry)\]", re.I)
_HTML_COMMENT_LINE = lazy(r"\s*<!--.*?-->\s*$")
# Where a Jinja tag opens; its end is found with str.find (_jinja_tags). As one
# pattern (``\{#.*?#\}|...``) each unclosed opener rescanned the rest of the text.
_JINJA_OPEN = lazy(r"\{[#%{]")
_JINJA_CLOSE = {"#": "#}", "%": "%}", "{": "}}"}
_AGENT_LABEL = lazy(
    r"^[ \t]*[*_]{0,2}(?:target[ \t]+)?(?:sub)?agent(?:[ _]type)?[*_]{0,2}[ \t]*:[*_]{0,2}[ \t]*"
    r"`?(?P<name>[A-Za-z0-9][\w.:-]*)`?[ \t]*$",
    re.I | re.M,
)
AGENT_LABEL_LINES = 12
_NON_BLANK = lazy(r"\S")
# How sure a kind is: a marker or directive, a shape only one kind has, or a likely reading.
EXPLICIT = "explicit"
SURE = inference.SURE
LIKELY = inference.LIKELY


def mask_template(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Template text with Jinja tags blanked, same length and lines, plus the ``{{ }}`` spans.

    Comments and statements become spaces (their words are not instructions to
    the agent); expressions become zeros, so "at most {{ cap }} items" still
    reads as a number to the rules that need one.
    """
    if "{" not in text:
        return text, []
    spans: list[tuple[int, int]] = []
    parts: list[str] = []
    last = 0
    for start, end in _jinja_tags(text):
        tag = text[start:end]
        fill = "0" if tag.startswith("{{") else " "
        if fill == "0":
            spans.append((start, end))
        parts.append(text[last:start])
        parts.append("".join("\n" if c == "\n" else fill for c in tag))
        last = end
    parts.append(text[last:])
    return "".join(parts), spans


def _jinja_tags(text: str) -> Iterator[tuple[int, int]]:
    """Spans of ``{# #}``, ``{% %}`` and ``{{ }}`` tags, shortest first, in linear time."""
    found: dict[str, tuple[int, int]] = {}  # closer: (searched from, found at or -1)
    pos = 0
    while True:
        opener = _JINJA_OPEN.search(text, pos)
        if opener is None:
            return
        start = opener.start()
        closer = _JINJA_CLOSE[text[start + 1]]
        since, at = found.get(closer, (len(text) + 1, -1))
        if not (since <= start + 2 and (at < 0 or at >= start + 2)):
            at = text.find(closer, start + 2)
            found[closer] = (start + 2, at)
        if at < 0:
            pos = start + 1  # unclosed: no tag opens here
            continue
        yield start, at + 2
        pos = at + 2


def first_content_line(text: str, start_offset: int, start_line: int) -> tuple[int, int, str]:
    """(line number, offset, text) of the first line that is not blank or only a comment."""
    offset = start_offset
    line_no = start_line
    in_comment = False
    length = len(text)
    while offset < length:
        if not in_comment:  # skip blank lines in one C-level search, not a loop per line
            found = _NON_BLANK.search(text, offset)
            if found is None:
                break
            line_start = text.rfind("\n", offset, found.start()) + 1
            if line_start > offset:
                line_no += text.count("\n", offset, line_start)
                offset = line_start
        nl = text.find("\n", offset)
        end = length if nl < 0 else nl
        line = text[offset:end]
        stripped = line.strip()
        if in_comment:
            if "-->" in line:
                in_comment = False
        elif stripped and not _HTML_COMMENT_LINE.match(line):
            if stripped.startswith("<!--") and "-->" not in stripped:
                in_comment = True
            else:
                return line_no, offset, line
        if nl < 0:
            break
        offset = nl + 1
        line_no += 1
    return start_line, start_offset, ""


def detect(
    text: str,
    file_kind: str,
    directives: list[suppress.Directive],
    body_line: int,
    body_offset: int,
    default_kind: str,
) -> tuple[str, str | None, int, str | None]:
    """(kind, target agent, anchor line, confidence) for a prompt's text.

    The confidence is EXPLICIT (a marker or ``kind=`` directive), SURE or
    LIKELY (inferred from content), or None (the default kind).

    The target agent comes from an ``agent=`` directive or an ``Agent: NAME``
    line among the first lines of content.
    """
    kind: str | None = None
    agent: str | None = None
    anchor = 0
    for directive in directives:
        if directive.action != "set":
            continue
        if not body_line <= directive.line < body_line + HEADER_LINES and not (
            file_kind == "template" and directive.line <= HEADER_LINES
        ):
            directive.problems.append(
                "kind= and agent= directives only count in the first 5 lines; move it up"
            )
            continue
        if "kind" in directive.settings and kind is None:
            kind = directive.settings["kind"]
            anchor = directive.line
        agent = directive.settings.get("agent", agent)
    line_no, first_offset, first = first_content_line(text, body_offset, body_line)
    if agent is None:
        agent = _agent_label(text, first_offset)
    marker = MARKER.match(first)
    if marker:
        anchor = line_no
        if kind is None:
            kind = marker.group(1).lower()
    if kind is not None:
        return kind, agent, anchor or line_no, EXPLICIT
    if file_kind in ("prompt", "template"):
        inferred = inference.infer(text, first)
        if inferred:
            return inferred[0], agent, line_no, inferred[1]
    return default_kind, agent, line_no, None


def _agent_label(text: str, start: int) -> str | None:
    """An ``Agent: NAME`` line near the top of a prompt names its target agent."""
    end = start
    for _ in range(AGENT_LABEL_LINES):
        nl = text.find("\n", end)
        if nl < 0:
            end = len(text)
            break
        end = nl + 1
    # Only a line that says "agent" can be the label; its pattern costs ~2 ms to compile.
    if "agent" not in text[start:end].lower():
        return None
    match = _AGENT_LABEL.search(text, start, end)
    return match.group("name") if match else None
