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
    import tomllib

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", path=str(path)) from None
    from dispatch_kit.yamlfile import decode_utf8

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
    return Config(
        select=values.get("select"),
        ignore=values.get("ignore", ()),
        exclude=values.get("exclude", ()),
        root=os.path.dirname(os.path.realpath(path)),
        source=str(path),
    )
