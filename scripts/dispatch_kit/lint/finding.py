"""One finding: where, which rule, what to do. Every output format is built from these."""

from __future__ import annotations

from dispatch_kit.lint.record import Record


class Finding(Record):
    """A rule violation at a 1-based line and column of a file (``-`` or a label for stdin).

    A named tuple (not a dataclass: the linter's cold start matters), so
    findings sort by path, line, column, code.
    """

    path: str
    line: int
    column: int
    code: str
    name: str
    severity: str  # "error" | "warning"
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
        }
