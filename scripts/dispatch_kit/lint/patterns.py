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
