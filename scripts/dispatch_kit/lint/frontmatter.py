"""YAML frontmatter of skills and agents: split cheaply, parse with the C loader.

Linting a thousand skills must not pay for ruamel.yaml's round-trip parser;
the frontmatter is tiny and needs no positions beyond "which line holds this
key", which a scan of the lines answers. PyYAML's ``CSafeLoader`` (C, no tags
executed) parses it; the pure-Python ``SafeLoader`` is the fallback.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from dispatch_kit.lint.patterns import lazy

_KEY_LINE = lazy(r"^([A-Za-z_][\w-]*)[ \t]*:", re.M)


class Frontmatter(NamedTuple):
    text: str  # the YAML between the fences
    first_line: int  # 1-based line of the first YAML line (the line after "---")
    body_line: int  # 1-based line where the body starts (after the closing "---")
    body_offset: int  # character offset of the body


class FrontmatterError(Exception):
    def __init__(self, message: str, line: int, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def split(text: str) -> Frontmatter | None:
    """The frontmatter block at the very start of ``text``, or None when there is none."""
    if not text.startswith("---"):
        return None
    first_nl = text.find("\n")
    if first_nl < 0 or text[:first_nl].rstrip("\r") != "---":
        return None
    pos = first_nl + 1
    line = 2
    while pos <= len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl
        if text[pos:end].rstrip("\r") in ("---", "..."):
            body = len(text) if nl < 0 else nl + 1
            return Frontmatter(text[first_nl + 1 : pos], 2, line + 1, body)
        if nl < 0:
            return None
        pos = nl + 1
        line += 1
    return None


# A "key: plain text" line whose value YAML would read as that same string.
_SIMPLE_LINE = lazy(r"([A-Za-z_][\w-]*):(?:[ \t]+([^\s'\"\[\]{}&*!|>%@`#,?:-][^\n]*?))?[ \t]*")
_NOT_A_STRING = lazy(
    r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|null|Null|NULL|~|[-+]?(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?[\d_]+(?::[0-5]?\d)+(?:\.\d*)?"
    r"|\d{4}-\d\d?-\d\d?.*)"
)

# Every value _NOT_A_STRING matches starts with one of these or a digit of any
# script (``\d``), or is empty: a description starting with anything else needs
# no regular expression.
_NOT_A_STRING_STARTS = frozenset("yYnNtTfFoOeE~+-._0123456789") | {""}


def _plain(value: str | None) -> bool:
    """Whether YAML reads ``value`` as exactly this string."""
    return (
        value is not None
        and " #" not in value
        and ": " not in value
        and "\t" not in value
        and (
            (value[:1] not in _NOT_A_STRING_STARTS and not value[:1].isdecimal())
            or _NOT_A_STRING.fullmatch(value) is None
        )
    )


def _simple(text: str) -> dict[str, Any] | None:
    """Parse simple frontmatter without the YAML library.

    Simple means ``key: plain string`` lines, plus one level of nesting under
    a bare ``key:`` (indented ``name: string`` lines, or ``- string`` items).
    Most skill and agent frontmatter is exactly that, and skipping PyYAML
    (import and construction) is most of the cost of linting such a file.
    Anything else (quotes, flow collections, block scalars, comments, numbers,
    booleans, duplicate keys) returns None and goes to the real parser.
    """
    data: dict[str, Any] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    i = 0
    while i < len(lines):
        match = _SIMPLE_LINE.fullmatch(lines[i])
        if match is None:
            return None
        key, value = match.group(1), match.group(2)
        i += 1
        if key in data:
            return None
        if value is not None:
            if not _plain(value):
                return None
            data[key] = value
            continue
        nested = []
        while i < len(lines) and lines[i][:1] in (" ",):
            nested.append(lines[i])
            i += 1
        data[key] = _nested(nested)
        if data[key] is None:
            return None
    return data or None


def _nested(lines: list[str]) -> dict[str, str] | list[str] | None:
    if not lines:
        return None  # "key:" alone is null in YAML: let the real parser say so
    indent = len(lines[0]) - len(lines[0].lstrip(" "))
    items: list[str] = []
    mapping: dict[str, str] = {}
    for line in lines:
        if len(line) - len(line.lstrip(" ")) != indent:
            return None
        body = line[indent:]
        if body.startswith("- "):
            value = body[2:].strip()
            if mapping or not value or value[0] in "'\"[]{}&*!|>%@`#,?:-" or not _plain(value):
                return None
            items.append(value)
            continue
        match = _SIMPLE_LINE.fullmatch(body)
        if items or match is None or not _plain(match.group(2)) or match.group(1) in mapping:
            return None
        mapping[match.group(1)] = match.group(2)
    return items or mapping


def parse(fm: Frontmatter) -> Any:
    """The YAML value of the frontmatter; raises FrontmatterError with the file line."""
    simple = _simple(fm.text)
    if simple is not None:
        return simple
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(fm.text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = fm.first_line + (mark.line if mark else 0)
        column = (mark.column + 1) if mark else 1
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise FrontmatterError(f"frontmatter is not valid YAML: {problem}", line, column) from None
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"frontmatter is not valid YAML: {exc}", fm.first_line) from None


def key_lines(fm: Frontmatter) -> dict[str, int]:
    """Top-level key -> 1-based file line, for pointing findings at the right line."""
    found: dict[str, int] = {}
    for match in _KEY_LINE.finditer(fm.text):
        found.setdefault(match.group(1), fm.first_line + fm.text.count("\n", 0, match.start()))
    return found
