"""Which rules run and which files are skipped: ``[tool.dispatch-kit]`` plus the command line.

The table is found the way Python tools find theirs: the nearest
``pyproject.toml`` above the current directory that has a
``[tool.dispatch-kit]`` table. Keys the linter reads: ``select``, ``ignore``
(codes, names or prefixes) and ``exclude`` (glob patterns relative to that
file's folder). Other keys belong to other dispatch-kit commands and are left
alone. The command line layers on top: ``--select`` replaces the configured
selection, ``--ignore`` removes more.
"""

from __future__ import annotations

import os
import re

from dispatch_kit.errors import InputError
from dispatch_kit.lint.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TABLE = "dispatch-kit"


class Config(Record):
    select: tuple[str, ...] | None = None  # None: every rule
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    root: str | None = None  # folder (resolved) that exclude patterns are relative to
    source: str | None = None  # the pyproject.toml it came from, for messages
    cli_select: tuple[str, ...] | None = None
    cli_ignore: tuple[str, ...] = ()
    force_exclude: bool = False  # apply exclude to files named on the command line too

    def with_cli(
        self, select: tuple[str, ...] | None, ignore: tuple[str, ...], force_exclude: bool = False
    ) -> Config:
        return self._replace(cli_select=select, cli_ignore=ignore, force_exclude=force_exclude)

    def enabled(self) -> frozenset[str]:
        """The codes that run: config select minus config ignore, then the CLI on top."""
        from dispatch_kit.lint import registry

        try:
            codes = (
                registry.resolve_all(self.select)
                if self.select is not None
                else (registry.resolve("ALL"))
            )
            codes -= registry.resolve_all(self.ignore)
        except InputError as exc:
            if self.source:
                exc.message = f"[tool.{TABLE}] {exc.message}"
                exc.path = self.source
            raise
        if self.cli_select is not None:
            codes = registry.resolve_all(self.cli_select)
        return frozenset(codes - registry.resolve_all(self.cli_ignore))


def upward(start: str | Path) -> Iterator[str]:
    """``start`` (resolved) and each folder above it, up to the root.

    Plain ``os.path`` strings: the configuration and agent lookups run on every
    lint, and pathlib (with the urllib.parse it imports) was a tenth of a
    one-file lint's start-up.
    """
    folder = os.path.realpath(start)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def find_pyproject(start: str | Path) -> str | None:
    """The nearest pyproject.toml at or above ``start`` with a [tool.dispatch-kit] table."""
    for folder in upward(start):
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            try:  # bytes: a file that is not UTF-8 must reach load() and be refused there,
                with open(candidate, "rb") as handle:  # not be passed over in silence
                    raw = handle.read()
            except OSError:
                raw = b""
            if f"[tool.{TABLE}".encode() in raw or f'[tool."{TABLE}"'.encode() in raw:
                return candidate
    return None


def load(start: str | Path | None = None, explicit: str | None = None) -> Config:
    """The configuration for a run started in ``start`` (or read from ``explicit``)."""
    if explicit:
        from pathlib import Path

        path: str | None = str(Path(explicit))  # as the user named it, tidied the same way
    else:
        path = find_pyproject(os.getcwd() if start is None else start)
    if path is None:
        return Config()
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", path=str(path)) from None
    values = KNOWN.get(path, raw)
    if values is None:
        values = read_table(path, raw)
        KNOWN.put(path, raw, values)
    return Config(
        select=values.get("select"),
        ignore=values.get("ignore", ()),
        exclude=values.get("exclude", ()),
        root=os.path.dirname(os.path.realpath(path)),
        source=str(path),
    )


def read_table(path: str, raw: bytes) -> dict[str, tuple[str, ...]]:
    """The linter's keys of ``[tool.dispatch-kit]`` in ``raw`` (the file at ``path``)."""
    import tomllib

    from dispatch_kit.readers.yamlfile import decode_utf8

    text = decode_utf8(raw, str(path), "not UTF-8", "; the lint settings here would be lost")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+), column (\d+)", str(exc))
        line, column = (int(where.group(1)), int(where.group(2))) if where else (None, None)
        message = str(exc).split(" (at line")[0]
        raise InputError(f"invalid TOML: {message}", str(path), line, column) from None
    table = data.get("tool", {}).get(TABLE, {})
    if not isinstance(table, dict):
        raise InputError(f"[tool.{TABLE}] must be a table", str(path), 1, 1)
    values: dict[str, tuple[str, ...]] = {}
    for key in ("select", "ignore", "exclude"):
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            line = next(
                (
                    n
                    for n, row in enumerate(text.splitlines(), 1)
                    if re.match(rf"\s*{key}\s*=", row)
                ),
                None,
            )
            raise InputError(f"[tool.{TABLE}] {key} must be a list of strings", str(path), line)
        values[key] = tuple(value)
    return values


class _Known:
    """Tables already read: a file's bytes and what :func:`read_table` made of them.

    The pre-dispatch hook lints every prompt with the project's configuration,
    and tomllib's import (with typing and datetime) costs a hook ~7 ms of its
    50; a table read before comes from this cache in well under one. One small
    file per pyproject.toml, beside this module's bytecode, as
    :mod:`dispatch_kit.lint.patterns` keeps compiled regexes, under the same
    rules: an entry is used only for the same file (by resolved path) whose
    bytes are all the same as when it was read (so it can never change a
    result), only tables that read without error are kept, any failure to read
    or write the cache costs a fresh read and nothing else, and nothing is
    written when bytecode writing is off.
    """

    @staticmethod
    def path(source: str) -> str | None:
        """Where the entry of the pyproject.toml at ``source`` (resolved) is kept."""
        import sys
        from zlib import crc32

        tag = sys.implementation.cache_tag
        if not tag:
            return None
        here = os.path.dirname(os.path.abspath(__file__))
        key = source.encode("utf-8", "surrogatepass")
        name = f"config-table-{crc32(key):08x}-{len(key)}.{tag}.marshal"
        if sys.pycache_prefix:
            return os.path.join(sys.pycache_prefix, here.lstrip(os.sep), name)
        return os.path.join(here, "__pycache__", name)

    def get(self, path: str, raw: bytes) -> dict[str, tuple[str, ...]] | None:
        import marshal

        source = os.path.realpath(path)
        cache = self.path(source)
        if cache is None:
            return None
        try:
            with open(cache, "rb") as handle:
                known_source, known_raw, values = marshal.loads(handle.read())
        except (OSError, EOFError, ValueError, TypeError):  # none, damaged or foreign
            return None
        if known_source != source or known_raw != raw or not isinstance(values, dict):
            return None  # another file whose name hashed alike, or this one changed
        for key, value in values.items():
            if key not in ("select", "ignore", "exclude") or not isinstance(value, tuple):
                return None
            if not all(isinstance(item, str) for item in value):
                return None
        return values

    def put(self, path: str, raw: bytes, values: dict[str, tuple[str, ...]]) -> None:
        import marshal
        import sys

        source = os.path.realpath(path)
        cache = self.path(source)
        if cache is None or sys.dont_write_bytecode:
            return
        tmp = f"{cache}.{os.getpid()}-{os.urandom(4).hex()}.tmp"  # hosts may share a folder
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(marshal.dumps((source, raw, values)))
            os.replace(tmp, cache)
        except (OSError, ValueError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


KNOWN = _Known()
