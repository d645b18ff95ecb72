"""DK9xx: directives that do nothing or cannot be understood.

The engine applies suppressions after every other rule has run, then reports
these: a suppression that matched no finding is stale and would hide the next
real one; a directive with an unknown rule or kind silently changes nothing.
"""

from __future__ import annotations

from dispatch_kit.lint.registry import Example, Rule

_USED = """<!-- dispatch-kit: ignore-next-line DK603 -->
[Inspect] Read eval/results.csv and say whether gpt-4o scored above 0.8 on every suite.
"""

UNUSED = Rule(
    code="DK901",
    name="unused-suppression",
    severity="warning",
    message="remove this suppression: it suppresses nothing",
    rationale="""\
A suppression outlives the finding it was written for: the prompt is fixed,
the comment stays, and months later it silently hides a new, real problem on
that line. Reporting suppressions that match nothing keeps them honest. Only
rules that are enabled count.""",
    applies_to="dispatch-kit: ignore-next-line / ignore-file comments in every file",
    bad=Example(_USED.replace("gpt-4o", "the new model")),
    good=Example(_USED),
    scope="meta",
)

INVALID = Rule(
    code="DK902",
    name="invalid-directive",
    severity="error",
    message="fix the dispatch-kit: directive (known actions: ignore-next-line, ignore-file, "
    "kind=, agent=; known rule codes and names)",
    rationale="""\
A directive the linter cannot read does nothing: a misspelt kind leaves a
prompt unchecked, a misspelt rule code suppresses nothing. kind= and agent=
only count in a file's first five lines (after any frontmatter), where the
reader of the prompt expects them.""",
    applies_to="dispatch-kit: comments in every file",
    bad=Example(
        "<!-- dispatch-kit: kind=inspection -->\nRead setup.cfg and list the linters it "
        "configures.\n"
    ),
    good=Example(
        "<!-- dispatch-kit: kind=inspect -->\nRead setup.cfg and list the linters it configures.\n"
    ),
    scope="meta",
)

RULES = (UNUSED, INVALID)
