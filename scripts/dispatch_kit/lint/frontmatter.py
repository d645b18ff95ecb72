"""YAML frontmatter of skills and agents: split cheaply, parse with the C loader.

Linting a thousand skills must not pay for ruamel.yaml's round-trip parser;
the frontmatter is tiny and needs no positions beyond "which line holds this
key", which a scan of the lines answers. PyYAML's ``CSafeLoader`` (C, no tags
executed) parses it; the pure-Python ``SafeLoader`` is the fallback. Most
frontmatter never gets that far: a small reader here answers for the common
shapes exactly as ``CSafeLoader`` would (its two error messages are libyaml's
wording), so linting typical skills and agents never imports PyYAML.
"""

from __future__ import annotations

import re

from dispatch_kit.lint.patterns import lazy
from dispatch_kit.lint.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any

_KEY_LINE = lazy(r"^([A-Za-z_][\w-]*)[ \t]*:", re.M)


class Frontmatter(Record):
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
    close = _CLOSING_FENCE.search(text, first_nl + 1)
    if close is None:
        return None
    pos = close.start()
    line = 2 + text.count("\n", first_nl + 1, pos)
    body = close.end() + 1 if close.end() < len(text) else len(text)
    return Frontmatter(text[first_nl + 1 : pos], 2, line + 1, body)


# The line that closes a frontmatter block ("---" or "...", trailing CRs allowed),
# found by one search rather than a Python loop over lines.
_CLOSING_FENCE = lazy(r"^(?:---|\.\.\.)\r*$", re.M)


# The fast reader below parses the frontmatter most skills and agents have
# without PyYAML, whose import alone costs more than linting a file. It must
# agree with PyYAML's CSafeLoader on every text it answers for, so it answers
# only for a small, fully understood subset and returns None for the rest.

# Characters outside printable ASCII, newline and the non-ASCII characters
# YAML allows. Tabs, carriage returns, NEL, the Unicode line and paragraph
# separators and the BOM change how libyaml splits, indents or skips text,
# and control characters make it fail: such texts go to PyYAML.
_UNUSUAL = lazy(r"[^\n -~\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")

# One significant line: indentation, then "- rest" or "key:" and the rest.
_ENTRY = lazy(r"( *)(?:(-) +|([A-Za-z_][\w-]{0,999}):(?: +|$))(.*)", re.ASCII)

# A scalar is a plain string unless one of PyYAML's implicit resolvers
# (bool, int, float, null, timestamp, merge, value) claims it. This is a
# superset of their patterns: a false match only sends the text to PyYAML.
_NOT_A_STRING = lazy(
    r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|null|Null|NULL|~|=|<<"
    r"|[-+]?(?:0b[01_]+|0x[\da-fA-F_]+|[\d_]*(?:\.[\d_]*)?(?:[eE][-+]?\d+)?"
    r"|\d[\d_]*(?::[0-5]?\d)+(?:\.[\d_]*)?|\.(?:inf|Inf|INF))"
    r"|\.(?:nan|NaN|NAN)|\d{4}-\d\d?-\d\d?.*)"
)

# Every value _NOT_A_STRING matches starts with one of these or a digit of any
# script (``\d``), or is empty: a description starting with anything else needs
# no regular expression.
_NOT_A_STRING_STARTS = frozenset("yYnNtTfFoOeE~=<+-._0123456789") | {""}

# Characters that cannot start a plain scalar, or start one only in ways the
# fast reader does not follow.
_INDICATORS = frozenset("'\"[]{}&*!|>%@`#,?:-")

# A one-line quoted scalar, then only spaces and a comment. Double quotes
# accept only the escapes in _ESCAPES; any other goes to PyYAML.
_QUOTED = lazy(r"""(?:'((?:[^']|'')*+)'|"((?:[^"\\]|\\["\\/nt])*+)") *(?: #.*)?""")
_ESCAPE = lazy(r"\\(.)")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t"}

# "[]" or "{}"; and one item of a one-line flow sequence with the "," or "]"
# after it. Plain items hold no quotes, comments, brackets or "?" (which ends
# them in PyYAML's pure-Python scanner), and a ":" only before a character
# that cannot end a flow key.
_EMPTY_FLOW = lazy(r"(?:\[ *\]|\{ *\}) *(?: #.*)?")
_FLOW_ITEM = lazy(
    r""" *(?:'((?:[^']|'')*+)'|"((?:[^"\\]|\\["\\/nt])*+)"|"""
    r"""([^\s,\[\]{}#:'"&*!|>%@`?-](?:[^,\[\]{}#:'"?]|:(?![\s,\[\]{}]))*+)) *([,\]])""",
    re.ASCII,
)
_AFTER = lazy(r" *(?: #.*)?")

# A flow collection left open at the very end of the text, made of words,
# ", " and "key: " only: libyaml meets the end of the stream where it expects
# a "," or the bracket closing the innermost collection (group 1 when "[").
_WORD = r"[A-Za-z0-9_]++(?: [A-Za-z0-9_]++)*+"
_UNCLOSED = lazy(
    rf"(?:\[ *(?:{_WORD} *, *)*|\{{ *(?:{_WORD}(?:: +{_WORD})? *, *)*{_WORD}: +)*"
    rf"(?:(\[ *(?:{_WORD} *, *)*{_WORD} *)"
    rf"|\{{ *(?:{_WORD}(?:: +{_WORD})? *, *)*{_WORD}(?:: +{_WORD})? *)"
)

_DEFER: Any = object()  # what the fast reader returns for text it leaves to PyYAML

# A significant line: indentation width, "-" or None, key or None, the rest
# after "- " or "key: ", its 0-based line and the rest's column, and the line
# of the end of the stream when nothing but blank lines follows, else -1.
_Entry = tuple[int, str | None, str | None, str, int, int, int]


class _Broken(Exception):
    """Frontmatter PyYAML is certain to reject: its problem and (0-based) mark."""

    def __init__(self, problem: str, line: int, column: int) -> None:
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column


def _plain(value: str | None) -> bool:
    """Whether YAML reads ``value``, written plain in a block, as exactly this string."""
    return (
        value is not None
        and " #" not in value
        and ": " not in value
        and "\t" not in value
        and value[-1:] != ":"
        and (
            (value[:1] not in _NOT_A_STRING_STARTS and not value[:1].isdecimal())
            or _NOT_A_STRING.fullmatch(value) is None
        )
    )


def _simple(text: str, first_line: int = 1) -> dict[str, Any] | None:
    """Parse common frontmatter without the YAML library, or return None.

    Reads ``key: value`` lines with at most one level of nesting under a bare
    ``key:`` (indented ``name: value`` lines or ``- value`` items), where a
    value is a one-line plain, single- or double-quoted scalar, a one-line
    flow sequence of those, ``{}``, or nothing (null); and comments. Most
    skill and agent frontmatter is exactly that, and skipping PyYAML (import
    and construction) is most of the cost of linting such a file. Two kinds
    of broken frontmatter raise the FrontmatterError the PyYAML path would:
    ``key: : ...`` and a flow collection left open at the end. Anything else
    (block scalars, anchors, tags, numbers other than plain decimals, booleans,
    duplicate keys, tabs) returns None and goes to the real parser.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if _UNUSUAL.search(text) is not None:
        return None
    entries: list[_Entry] = []
    last = -1  # the last line holding anything, comments included
    for number, line in enumerate(text.split("\n")):
        match = _ENTRY.fullmatch(line)
        if match is not None:
            indent, dash, key, rest = match.groups()
            entries.append((len(indent), dash, key, rest, number, match.start(4), -1))
        elif stripped := line.lstrip(" "):
            if stripped[0] != "#":
                return None
        else:
            continue  # a blank line
        last = number
    if not entries or entries[0][0]:
        return None
    if entries[-1][4] == last:
        # A flow collection left open there runs into the end of the stream,
        # which libyaml puts after the last line break, or on a new line when
        # the text does not end with one.
        entries[-1] = (*entries[-1][:6], text.count("\n") + (not text.endswith("\n")))
    try:
        return _read(entries)
    except _Broken as exc:
        message = f"frontmatter is not valid YAML: {exc.problem}"
        raise FrontmatterError(message, first_line + exc.line, exc.column + 1) from None


def _read(entries: list[_Entry]) -> dict[str, Any] | None:
    """The mapping the entries make, or None to leave them to PyYAML.

    Indented entries fill the mapping or sequence of the bare ``key:`` of the
    top level above them, all at the same indentation. Duplicate keys are
    noted, not refused at once: PyYAML reports a later syntax error before
    it constructs anything, so such an error must still be raised.
    """
    data: dict[str, Any] = {}
    block: dict[str, Any] | list[Any] = data
    bare_key = ""  # the last top-level key, while it is bare and its block empty
    indent = 0  # the indentation of the nested block
    duplicate = False
    for width, dash, key, rest, number, column, end in entries:
        bare = not rest or rest[0] == "#"
        if not width:
            block, bare_key, indent = data, "", 0
        elif bare_key:
            block, indent = [] if dash else {}, width
            data[bare_key], bare_key = block, ""
        elif width != indent:
            return None
        if dash:  # "- item"
            if bare or not isinstance(block, list):
                return None
            block.append(value := _value(rest, end))
        else:
            if isinstance(block, list) or not _plain(key):
                return None
            if rest[:1] == ":" and rest[1:2] in ("", " "):
                # After a simple key's ":", libyaml allows no second ":".
                raise _Broken("mapping values are not allowed in this context", number, column)
            duplicate = duplicate or key in block
            block[key] = value = None if bare else _value(rest, end)
            if bare and not width:
                bare_key = key
        if value is _DEFER:
            return None
    return None if duplicate else data  # PyYAML keeps the last duplicate: let it say so


def _value(rest: str, end: int) -> Any:
    """The value of a one-line scalar or flow collection ``rest``, or _DEFER.

    ``end`` >= 0 means nothing but blank lines follows, so a flow collection
    left open there surely fails in PyYAML, at the end of the stream (line
    ``end``).
    """
    first = rest[:1]
    if first == "'" or first == '"':
        match = _QUOTED.fullmatch(rest)
        if match is None:
            return _DEFER
        single, double = match.groups()
        return single.replace("''", "'") if single is not None else _unescape(double)
    if first == "[" or first == "{":
        return _flow(rest, end)
    cut = rest.find(" #")
    value = (rest if cut < 0 else rest[:cut]).rstrip(" ")
    if value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
        # A plain decimal without sign, underscore or leading zero (YAML 1.1 reads
        # those otherwise): PyYAML's int, as in an agent's ``maxTurns: 60``.
        return int(value)
    return value if first not in _INDICATORS and _plain(value) else _DEFER


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], text) if "\\" in text else text


def _flow(rest: str, end: int) -> Any:
    """A one-line flow sequence of strings, ``[]`` or ``{}``, or _DEFER."""
    if _EMPTY_FLOW.fullmatch(rest) is not None:
        return [] if rest[0] == "[" else {}
    items: list[str] = []
    pos = 1
    if rest[0] == "[":
        while (match := _FLOW_ITEM.match(rest, pos)) is not None:
            single, double, plain, after = match.groups()
            if single is not None:
                items.append(single.replace("''", "'"))
            elif double is not None:
                items.append(_unescape(double))
            elif _plain(plain := plain.rstrip(" ")):
                items.append(plain)
            else:
                return _DEFER
            pos = match.end()
            if after == "]":
                return items if _AFTER.fullmatch(rest, pos) is not None else _DEFER
    # A short line keeps flow keys within libyaml's 1024-character limit on
    # simple keys, and the nesting shallow.
    if end >= 0 and len(rest) <= 200 and (match := _UNCLOSED.fullmatch(rest)) is not None:
        closing = "]" if match.group(1) is not None else "}"
        raise _Broken(f"did not find expected ',' or '{closing}'", end, 0)
    return _DEFER


def parse(fm: Frontmatter) -> Any:
    """The YAML value of the frontmatter; raises FrontmatterError with the file line."""
    simple = _simple(fm.text, fm.first_line)
    if simple is not None:
        return simple
    return _parse_with_yaml(fm)


def _parse_with_yaml(fm: Frontmatter) -> Any:
    """The PyYAML reading of the frontmatter: the reference the fast reader must match."""
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
