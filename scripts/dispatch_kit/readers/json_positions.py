"""The one JSON reader: every JSON document a user hands the CLI goes through here.

Plans, check results, variables files and manifests are read by
:func:`read_json` / :func:`parse_json` (plain values) or :func:`load_json`
(ruamel containers that remember where each key and item sits). Every defect
is an :class:`InputError` at ``file:line:col``: a syntax error where the
standard parser stopped, a duplicate key at its second occurrence, an integer
past Python's 4,300-digit limit at its first digit.

A plan may be written in JSON. ruamel.yaml reads nearly all JSON (it is YAML
1.2) but rejects a few valid documents, for example a tab before the first
``{`` or after the last ``}``. For those the plan loader falls back to the
standard ``json`` module, which knows no positions; without them every schema
error would point at line 1. This module re-reads an already-valid document
and records line and column the same way ruamel does (``.lc``), so
``yamlfile.position`` and ``yamlfile.locate`` work on either source.
"""

from __future__ import annotations

import bisect
import json
import sys
from json.decoder import scanstring
from json.scanner import NUMBER_RE
from typing import Any, NoReturn

from dispatch_kit.errors import InputError

_WHITESPACE = " \t\n\r"
_CONSTANTS = {
    "null": None,
    "true": True,
    "false": False,
    "NaN": float("nan"),
    "Infinity": float("inf"),
    "-Infinity": float("-inf"),
}


def read_json(path: str) -> Any:
    """The plain JSON value in the file ``path`` (``-``: stdin): a regular file, UTF-8, strict."""
    from dispatch_kit.readers.yamlfile import read_text

    return parse_json(read_text(path), path)


def parse_json(text: str, path: str | None) -> Any:
    """Parse JSON strictly (duplicate keys refused) into plain values; InputError at its place."""
    try:
        return json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path, exc.lineno, exc.colno) from None
    except DuplicateKey as exc:
        key, line, column = _find_duplicate(text, exc.key)
        raise InputError(f"invalid JSON: duplicate key {key!r}", path, line, column) from None
    except RecursionError:
        _deep_nesting(text, path)
    except ValueError as exc:  # an integer past the digit limit: json names no position
        line, column = long_number_position(text)
        message = " ".join(str(exc).split())[:200]
        if line is not None:
            message = f"an integer with more than {sys.get_int_max_str_digits()} digits"
        raise InputError(f"invalid JSON: {message}", path, line, column) from None


def load_json(text: str, path: str) -> Any:
    """Parse JSON strictly (duplicate keys rejected) and return positioned containers."""
    if text.startswith("\ufeff"):
        text = text[1:]
    parse_json(text, path)
    try:
        value, _ = _Reader(text).value(_skip(text, 0))
    except RecursionError:
        _deep_nesting(text, path)
    return value


def _deep_nesting(text: str, path: str | None) -> NoReturn:
    """Refuse a document nested deeper than Python's stack, naming where it gets too deep."""
    from dispatch_kit.readers.yamlfile import refuse_deep_nesting

    refuse_deep_nesting(text, path or "<input>")  # raises: the depth passed its limit
    raise InputError("invalid JSON: nesting too deep", path, 1, 1)


def offset_position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``text[offset]``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def key_position(text: str, key: str) -> tuple[int, int]:
    """1-based (line, column) of the first ``"key"`` in a JSON text; (1, 1) when absent.

    For a finding about a key a manifest misses or misuses: the first mention is
    the place a reader looks at, and a missing key has no place but the top.
    """
    offset = text.find(json.dumps(key))
    return offset_position(text, offset) if offset >= 0 else (1, 1)


def long_number_position(text: str) -> tuple[int | None, int | None]:
    """Where the first run of digits too long for ``int()`` starts (one linear pass); the
    JSON and YAML parsers both fail on it with a ValueError that names no position."""
    import re

    limit = sys.get_int_max_str_digits() or len(text) + 1
    for match in re.finditer(r"[0-9]+", text):
        if match.end() - match.start() > limit:
            return offset_position(text, match.start())
    return None, None


class DuplicateKey(ValueError):
    """A JSON object names a key twice; ``json.loads`` alone would keep the last silently."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` shared by plans, manifests and the linter's manifest rule."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


class _Duplicate(Exception):
    def __init__(self, key: str, index: int) -> None:
        super().__init__(key)
        self.key = key
        self.index = index


def _find_duplicate(text: str, key: str) -> tuple[str, int | None, int | None]:
    """(key, line, column) of the first key an object names twice, at its second occurrence.

    ``json.loads`` stopped at the close of an object holding a duplicate, so the
    text up to there is valid JSON: the positioned reader walks it and meets a
    repeated key (this one, or an outer one that comes first) before any defect
    further on. Should the walk fail anyway, the second ``"key"`` in the text is
    near enough to point at.
    """
    try:
        _Reader(text).value(_skip(text, 0))
    except _Duplicate as found:
        return (found.key, *offset_position(text, found.index))
    except (IndexError, ValueError, InputError, RecursionError):
        pass
    needle = json.dumps(key)
    first = text.find(needle)
    second = text.find(needle, first + 1) if first >= 0 else -1
    if second < 0:
        return key, None, None
    return (key, *offset_position(text, second))


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _past_comma(text: str, index: int) -> int:
    """From just past an object or array member: the next member, or the closing bracket.

    The text has passed ``json.loads``, so after a member comes either a comma
    or the closer; objects and arrays share this one step, and the loops stay
    in :meth:`_Reader.value` so that each nesting level costs one Python frame
    (the depth it can read matches what ``json.loads`` accepts).
    """
    index = _skip(text, index)
    if text[index] == ",":
        index = _skip(text, index + 1)
    return index


class _Reader:
    """A small recursive reader for text ``json.loads`` has already accepted."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def where(self, index: int) -> tuple[int, int]:
        """0-based (line, column), ruamel's convention inside ``.lc``."""
        line = bisect.bisect_right(self.line_starts, index) - 1
        return line, index - self.line_starts[line]

    def value(self, index: int) -> tuple[Any, int]:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        text = self.text
        char = text[index]
        if char == "{":
            mapping = CommentedMap()
            index = _skip(text, index + 1)
            while text[index] != "}":
                key_line, key_col = self.where(index)
                key, after = scanstring(text, index + 1)
                if key in mapping:
                    raise _Duplicate(key, index)
                index = after
                index = _skip(text, _skip(text, index) + 1)  # past ':'
                value_line, value_col = self.where(index)
                mapping[key], index = self.value(index)
                mapping.lc.add_kv_line_col(key, [key_line, key_col, value_line, value_col])
                index = _past_comma(text, index)
            return mapping, index + 1
        if char == "[":
            sequence = CommentedSeq()
            index = _skip(text, index + 1)
            while text[index] != "]":
                item_line, item_col = self.where(index)
                item, index = self.value(index)
                sequence.lc.add_kv_line_col(len(sequence), [item_line, item_col])
                sequence.append(item)
                index = _past_comma(text, index)
            return sequence, index + 1
        if char == '"':
            return scanstring(text, index + 1)
        for word, constant in _CONSTANTS.items():
            if text.startswith(word, index):
                return constant, index + len(word)
        match = NUMBER_RE.match(text, index)
        if match is None:  # unreachable for text json.loads accepted; never a traceback
            line, column = self.where(index)
            raise InputError("invalid JSON: unexpected value", None, line + 1, column + 1)
        integer, fraction, exponent = match.groups()
        if fraction or exponent:
            return float(integer + (fraction or "") + (exponent or "")), match.end()
        return int(integer), match.end()
