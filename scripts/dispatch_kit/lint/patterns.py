"""Regular expressions compiled on first use.

Compiling the rules' ~90 patterns costs more than linting one file, and a
pre-commit run on one prompt needs only the patterns of the rules that apply
to it. ``lazy()`` returns a stand-in that compiles on its first method call
and then binds the compiled pattern's methods onto itself, so later calls cost
the same as calls on a compiled pattern.
"""

from __future__ import annotations

import re
from typing import Any, cast

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "split")


class _Lazy:
    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str) -> Any:  # only reached before the first compile
        compiled = re.compile(self.pattern, self.flags)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        self.groupindex = compiled.groupindex
        return getattr(compiled, name)


def lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A pattern that compiles when first used (typed as a compiled pattern)."""
    return cast("re.Pattern[str]", _Lazy(pattern, flags))


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
