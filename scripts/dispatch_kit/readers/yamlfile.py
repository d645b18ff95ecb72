"""Read YAML or JSON a user wrote, with positions, and turn every failure into one line.

Plans and variable files come from people and from other programs. The loader
must never execute tags (``!!python/object``), never expand an alias bomb, and
never surface a parser traceback. ruamel.yaml's round-trip loader keeps the
line and column of every key, which the validators need for ``file:line:col``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from dispatch_kit.errors import InputError

# A generous ceiling on the nodes reachable through aliases: real plans have a
# few hundred; a "billion laughs" document reaches it after a handful of levels.
MAX_EXPANDED_NODES = 200_000


# Plans, vars files and check results are small; a bigger input is a mistake
# (``/dev/zero``, a log passed by accident) and is refused before it fills memory.
MAX_INPUT_BYTES = 16 * 1024 * 1024


def read_bytes(path: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes (``-``: stdin), at most ``limit``; InputError otherwise.

    Only regular files are opened: a FIFO or a device given as a plan would
    block for ever or read until memory runs out (``O_NONBLOCK`` keeps even the
    open of a FIFO with no writer from blocking).
    """
    import os
    import stat

    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(21, "Is a directory", path)
            if not stat.S_ISREG(mode):
                raise InputError("not a regular file (a FIFO, a device or a socket); "
                                 "give a file", path=path)
            os.set_blocking(fd, True)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(limit + 1)
        finally:
            os.close(fd)
    if len(data) > limit:
        raise InputError(f"larger than {limit // (1024 * 1024)} MiB; refusing to read it",
                         path=path)
    return data


def read_text(path: str) -> str:
    """Read a file (``-`` is stdin) as UTF-8, naming the first bad byte's position."""
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return decode_utf8(data, path)


def decode_utf8(data: bytes, path: str, problem: str = "not valid UTF-8", then: str = "") -> str:
    """``data`` as UTF-8 text; InputError ``problem (byte 0xNN)then`` at the bad byte's line
    and column (the one place a file's bytes are decoded with a position)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(f"{problem} (byte 0x{data[exc.start]:02x}){then}", path, line,
                         column) from None


# Deeper flow nesting than any plan, vars file or check result needs. ruamel's
# parser takes time quadratic in the depth (5,000 open brackets: ~10 s), so
# deeper input is refused before it reaches the parser.
MAX_FLOW_DEPTH = 200


def refuse_deep_nesting(text: str, path: str) -> None:
    """One linear pass over ``[``/``{`` outside quotes and comments: where the nesting of
    flow collections first passes :data:`MAX_FLOW_DEPTH`, an InputError names the spot.

    It over-counts brackets inside plain scalars (``test [ -f x ]``), which is
    harmless at this depth: they close again on the same line.
    """
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return
    import re

    depth = 0
    quote = ""
    line, line_start = 1, 0
    skip_to = 0  # past an escaped character or a comment
    for match in re.finditer(r"[\[\]{}\"'#\n\\]", text):  # the C engine skips the rest
        i, char = match.start(), match.group()
        if char == "\n":
            line, line_start = line + 1, i + 1  # a quoted scalar may span lines
        if i < skip_to:
            continue
        if quote:
            if char == "\\" and quote == '"':
                skip_to = i + 2
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n"):
            newline = text.find("\n", i)
            skip_to = len(text) if newline < 0 else newline
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise InputError(
                    f"nesting deeper than {MAX_FLOW_DEPTH} levels", path=path, line=line,
                    column=i - line_start + 1,
                )
        elif char in "]}":
            depth = max(0, depth - 1)


def load_yaml(text: str, path: str) -> Any:
    """Parse one YAML (or JSON) document with positions kept; raise InputError on any defect."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if not text.strip():
        raise InputError("empty file", path=path, line=1, column=1)
    refuse_deep_nesting(text, path)
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "\t" in problem or "'\\t'" in problem:
            problem = "tab character where YAML allows only spaces"
        if "duplicate key" in str(exc.problem or ""):
            problem = str(exc.problem).split("\n")[0].strip()
        raise InputError(
            f"invalid YAML: {problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except YAMLError as exc:
        line, column = _reader_error_position(exc, text)
        raise InputError(f"invalid YAML: {str(exc).splitlines()[0]}", path, line, column) from None
    except RecursionError:
        raise InputError("invalid YAML: nesting too deep", path=path) from None
    except ValueError as exc:  # ruamel builds an integer past Python's digit limit with int()
        from dispatch_kit.readers.json_positions import long_number_position

        line, column = long_number_position(text)
        message = " ".join(str(exc).split())[:200]
        if line is not None:
            message = f"an integer with more than {sys.get_int_max_str_digits()} digits"
        raise InputError(f"invalid YAML: {message}", path, line or 1, column or 1) from None
    if len(docs) != 1:
        raise InputError(
            f"expected one YAML document, found {len(docs)}", path=path, line=1, column=1
        )
    data = docs[0]
    _check_plain(data, path)
    return data


def read_document(path: str) -> Any:
    """The one YAML or JSON document in ``path``, with positions (plans, variables files).

    ruamel first; plain JSON as a fallback.

    ruamel reads almost all JSON. When it rejects a ``.json`` file the standard
    parser decides: a valid JSON document is accepted (with positions rebuilt),
    an invalid one is reported with JSON's own line and column.
    """
    text = read_text(path)
    try:
        return load_yaml(text, path)
    except InputError as exc:
        if not path.lower().endswith(".json"):
            if "mapping values are not allowed" in exc.message:
                exc.message += " (a value containing ': ' must be quoted)"
            raise
    from dispatch_kit.readers.json_positions import load_json

    return load_json(text, path)


def _reader_error_position(exc: Exception, text: str) -> tuple[int | None, int | None]:
    """Where a character YAML refuses (a control character, U+FFFE) sits in ``text``.

    ruamel's ReaderError carries the character and its offset but no line; for a
    string input the offset counts characters of ``text``. Should it not point at
    that character, the character's first occurrence does.
    """
    from dispatch_kit.readers.json_positions import offset_position

    character = getattr(exc, "character", None)
    if not isinstance(character, int):
        return None, None
    offset = getattr(exc, "position", None)
    if not (isinstance(offset, int) and 0 <= offset < len(text)
            and ord(text[offset]) == character):
        offset = text.find(chr(character))
    return offset_position(text, offset) if offset >= 0 else (None, None)


def _check_plain(data: Any, path: str) -> None:
    """Reject alias bombs and tagged values; only plain maps, lists and scalars may remain."""
    from ruamel.yaml.comments import TaggedScalar

    plain_scalars = (str, int, float, bool, type(None))
    budget = MAX_EXPANDED_NODES
    stack: list[tuple[Any, tuple[int | None, int | None]]] = [(data, (1, 1))]
    while stack:
        node, (line, column) = stack.pop()
        budget -= 1
        if budget < 0:
            raise InputError(
                f"document expands to more than {MAX_EXPANDED_NODES} nodes through aliases",
                path=path,
                line=1,
                column=1,
            )
        tag = getattr(getattr(node, "tag", None), "value", None)
        plain = isinstance(node, (dict, list, *plain_scalars))
        if isinstance(node, TaggedScalar) or tag or not plain:
            kind = f"tag {tag}" if tag else f"a value of type {type(node).__name__}"
            raise InputError(
                f"unsupported YAML: {kind}; only plain mappings, lists and scalars are allowed"
                " (quote dates and tagged text)",
                path=path,
                line=line,
                column=column,
            )
        if isinstance(node, dict):
            stack.extend((value, position(node, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, position(node, i)) for i, value in enumerate(node))


def position(container: Any, key: Any) -> tuple[int | None, int | None]:
    """1-based (line, column) of ``container[key]``'s key (or list item) when ruamel recorded it."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return None, None
    try:
        if isinstance(container, dict):
            line, column = lc.key(key)
        else:
            line, column = lc.item(key)
    except (KeyError, IndexError, TypeError):
        return None, None
    return line + 1, column + 1


def locate(data: Any, keys: Iterable[Any]) -> tuple[int | None, int | None]:
    """Position of the deepest recorded element along ``keys`` (a JSON-schema error path)."""
    best: tuple[int | None, int | None] = (1, 1)
    node = data
    for key in keys:
        if isinstance(node, dict) and key in node or isinstance(node, list) and (
            isinstance(key, int) and 0 <= key < len(node)
        ):
            line, column = position(node, key)
            if line is not None:
                best = (line, column)
            node = node[key]
        else:
            break
    return best


def to_plain(data: Any) -> Any:
    """Copy ruamel containers into plain dicts and lists (for jsonschema and JSON output)."""
    if isinstance(data, dict):
        return {str(k) if not isinstance(k, str) else k: to_plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    return data
