"""Regular expressions compiled on first use, from a cache of compiled code.

Compiling the rules' ~90 patterns takes Python's pure-Python regex compiler
about 25 ms on a small machine: more than the whole rest of a pre-commit run
on one prompt. Two things keep that off the common path:

- ``lazy()`` returns a stand-in that compiles on its first method call and
  then binds the compiled pattern's methods onto itself, so a run compiles
  only the patterns of the rules that apply, and later calls cost the same as
  calls on a compiled pattern.
- The compiler's output (the opcode list the C engine runs) is kept in a file
  beside this module's bytecode, the way Python keeps ``.pyc`` files, and the
  next process hands it straight to the C engine: 60 patterns in under 1 ms.

The cache is an optimisation that can never change a result. Its file name
carries the interpreter's cache tag and the regex engine's version number;
its entries are keyed by pattern text and flags; the C engine validates
every opcode list it is given; and any failure (no file, a foreign or
truncated file, a read-only folder, an interpreter whose internals differ)
falls back to ``re.compile``. Like bytecode, it is not written when
``PYTHONDONTWRITEBYTECODE`` is set (the launcher, bin/dispatch-kit, then
moves both to the plugin's data folder with ``sys.pycache_prefix``).
"""

from __future__ import annotations

import atexit
import marshal
import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:  # CPython's regex internals; elsewhere every pattern goes through re.compile
    import _sre
    from re import _compiler, _parser
except ImportError:  # pragma: no cover - other interpreters
    _sre = None

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "split")
# Entries not used by this process are dropped once the file holds more than this.
_MAX_ENTRIES = 1000

# (flags, code, groups, groupindex, indexgroup): what the C engine's compile() takes.
_Parts = tuple[int, list[int], int, dict[str, int], tuple["str | None", ...]]


def _cache_path() -> str | None:
    """Beside this module's bytecode (under ``sys.pycache_prefix`` when one is set),
    named for the exact interpreter build: a patch release may compile differently.

    ``DISPATCH_KIT_PATTERN_CACHE=off`` turns the cache off: an escape hatch
    should a Python release change the internals in a way the checks below
    miss, and the switch ``bench/bench_hook.py`` uses to show what it saves.
    """
    if _sre is None or not sys.implementation.cache_tag:
        return None
    if os.environ.get("DISPATCH_KIT_PATTERN_CACHE", "").strip().lower() in ("off", "0", "no"):
        return None
    name = f"patterns.{sys.implementation.cache_tag}-{sys.hexversion:x}-sre{_sre.MAGIC}.marshal"
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.pycache_prefix:
        return os.path.join(sys.pycache_prefix, here.lstrip(os.sep), name)
    return os.path.join(here, "__pycache__", name)


class _Cache:
    """Compiled regex code by ``flags:pattern``, loaded once and saved at exit if it grew."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.entries: dict[str, _Parts] | None = None
        self.used: set[str] = set()
        self.dirty = False

    def _load(self) -> dict[str, _Parts]:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as handle:
                blob = handle.read()  # marshal.load(file) reads piecemeal: 30x slower
            data = marshal.loads(blob)
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return data if isinstance(data, dict) else {}

    def compile(self, pattern: str, flags: int) -> re.Pattern[str]:
        if self.entries is None:
            self.entries = self._load()
        key = f"{int(flags)}:{pattern}"
        self.used.add(key)
        parts = self.entries.get(key)
        if parts is not None:
            try:
                return _sre.compile(pattern, *parts)
            except Exception:  # noqa: BLE001 - a bad entry only costs a fresh compile
                pass
        compiled = re.compile(pattern, flags)
        parts = _parts(pattern, flags)
        if parts is not None and self.path is not None:
            self.entries[key] = parts
            if not self.dirty:
                self.dirty = True
                atexit.register(self.save)
        return compiled

    def save(self) -> None:
        """Write the entries atomically; two processes saving at once both leave a valid file."""
        if not self.dirty or self.entries is None or self.path is None or sys.dont_write_bytecode:
            return
        entries = self.entries
        if len(entries) > _MAX_ENTRIES:
            entries = {key: value for key, value in entries.items() if key in self.used}
        folder = os.path.dirname(self.path)
        tmp = f"{self.path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"  # hosts may share a folder
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(marshal.dumps(entries))
            os.replace(tmp, self.path)
        except (OSError, ValueError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _parts(pattern: str, flags: int) -> _Parts | None:
    """What ``re.compile`` hands the C engine for ``pattern``, in a form marshal can store.

    Mirrors the last step of ``re._compiler.compile``; the result must equal
    ``re.compile``'s own pattern (same flags and code) before it is kept, and
    any difference in the interpreter's internals means no entry rather than
    a wrong one.
    """
    if _sre is None:
        return None
    try:
        tree = _parser.parse(pattern, flags)
        code = [int(op) for op in _compiler._code(tree, flags)]
        groupindex = dict(tree.state.groupdict)
        indexgroup: list[str | None] = [None] * tree.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        parts: _Parts = (
            int(flags | tree.state.flags), code, tree.state.groups - 1, groupindex,
            tuple(indexgroup),
        )
        rebuilt = _sre.compile(pattern, *parts)
        reference = re.compile(pattern, flags)
    except Exception:  # noqa: BLE001 - internals differ: no cache for this pattern
        return None
    # Patterns compare equal when their flags and compiled code are equal.
    return parts if rebuilt == reference else None


CACHE = _Cache(_cache_path())


class _Lazy:
    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:  # only reached before the first compile
        compiled = CACHE.compile(self.pattern, self.flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        self.groupindex = compiled.groupindex
        return getattr(compiled, name)


def lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A pattern that compiles when first used (typed as a compiled pattern)."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]


def search_words(
    pattern: re.Pattern[str], text: str, words: tuple[str, ...], back: str = ""
) -> re.Match[str] | None:
    """``pattern.search(text)`` for a pattern whose every match starts at one of ``words``
    (or, with ``back``, at a run of ``back`` characters just before one).

    Patterns built as ``\\bword...|\\bother...`` get no literal-prefix skip from
    the regex engine, which then tries each alternative at every position of
    the prompt. Starting at the first key word skips the text where no match
    can begin, and ``\\b`` still sees the character before the start.
    """
    start = -1
    for word in words:
        at = text.find(word)
        if at >= 0 and (start < 0 or at < start):
            start = at
    if start < 0:
        return None
    while start > 0 and text[start - 1] in back:
        start -= 1
    return pattern.search(text, start)


def match_at_words(pattern: re.Pattern[str], text: str, words: tuple[str, ...]) -> bool:
    """Whether ``pattern`` matches anywhere in ``text``, for a pattern whose every
    match starts at one of ``words``: tried only where they occur.

    A pattern of several long alternatives, each opening with ``\\b`` and a
    verb, costs tens of microseconds to search a prompt position by position;
    a handful of anchored tries at the few places it could start cost a few.
    """
    for word in words:
        at = text.find(word)
        while at >= 0:
            if pattern.match(text, at) is not None:
                return True
            at = text.find(word, at + 1)
    return False
