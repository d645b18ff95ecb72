"""One error type for bad input, so every command reports it the same way.

Users feed the CLI plans, prompts, templates and manifests they wrote by hand.
When one is malformed they need the file and line, not a traceback: the CLI
catches :class:`InputError` at the top, prints ``path:line:col: message`` and
exits 2.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad input a user can fix: a malformed file, a missing variable, a bad flag value."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column

    def location(self) -> str:
        """``path:line:col`` with whatever parts are known (1-based line and column)."""
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"
