"""The dispatch-prompt linter: the four dispatch patterns as rules a machine applies.

Public API (what the CLI, the hook and the benchmark use)::

    from dispatch_kit.lint import Config, lint_paths, lint_text
    findings = lint_paths(["prompts/"], Config())

Rules live one family per module under :mod:`dispatch_kit.lint.rules`; the
catalogue in :mod:`dispatch_kit.lint.registry` is the one list the CLI, the
``rule`` command, the docs and the tests read.
"""

from __future__ import annotations

from dispatch_kit.lint.config import Config
from dispatch_kit.lint.engine import lint_paths, lint_text
from dispatch_kit.lint.finding import Finding

__all__ = ["Config", "Finding", "lint_paths", "lint_text"]
