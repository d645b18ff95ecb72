"""DK8xx: prompt templates that render: valid syntax, known variables, existing includes."""

from __future__ import annotations

from collections.abc import Iterator

from dispatch_kit.lint.document import Document
from dispatch_kit.lint.registry import Example, Hit
from dispatch_kit.lint.rules._shared import family

TEMPLATE = frozenset({"template"})
_PATH = "templates/greeting.md.j2"
_GOOD = """{# dispatch-kit: kind=none #}
{#
A greeting for a new contributor.

Variables:
  name   str  who to greet
  team   str  the team they joined
#}
Welcome, {{ name }}! You are now part of {{ team }}.
"""


def _check_syntax(doc: Document) -> Iterator[Hit]:
    from dispatch_kit.lint.jinja_check import analyze

    syntax = analyze(doc).syntax
    if syntax:
        yield syntax[0], 1, f"template syntax error: {syntax[1]}"


def _check_undefined(doc: Document) -> Iterator[Hit]:
    from dispatch_kit.lint.jinja_check import analyze

    for _, line, message in analyze(doc).undefined:
        yield line, 1, message


def _check_missing(doc: Document) -> Iterator[Hit]:
    from dispatch_kit.lint.jinja_check import analyze

    for name, line in analyze(doc).missing:
        yield (
            line,
            1,
            (
                f"template '{name}' not found in this templates/ folder, next to this file or in "
                "the pack's templates/"
            ),
        )


# Every template rule reads the file itself, whatever prompt kind it renders.
_template_rule = family(
    applies_to="Jinja templates (*.j2, *.jinja)",
    scope="file",
    kinds=TEMPLATE,
    good=Example(_GOOD, path=_PATH),
)

RULES = (
    _template_rule(
        code="DK801",
        name="template-syntax-error",
        severity="error",
        message="fix the Jinja syntax error (or the unknown filter) at this line",
        rationale="""\
A template that does not parse fails every render, and the failure surfaces in
whichever orchestrator renders it next. Unknown filters are caught here too:
Jinja only rejects them when the template is compiled.""",
        bad=Example(_GOOD.replace("{{ team }}", "{{ team }"), path=_PATH),
        check=_check_syntax,
    ),
    _template_rule(
        code="DK802",
        name="undefined-template-variable",
        severity="error",
        message="document the variable under 'Variables:' in the header comment, or set it in "
        "the template",
        rationale="""\
Templates render with strict undefined: a variable the caller does not pass
stops the render. The header comment is the template's contract with its
callers; a variable read but not listed there (including one read by a
template it extends or includes) is one a caller will forget. Set variables,
macro arguments and loop variables need no entry.""",
        bad=Example(_GOOD.replace("  team   str  the team they joined\n", ""), path=_PATH),
        check=_check_undefined,
    ),
    _template_rule(
        code="DK803",
        name="missing-template",
        severity="error",
        message="fix the name: the extended, imported or included template does not exist",
        rationale="""\
`extends`, `import` and `include` resolve at render time; a misspelt or moved
clause file breaks every template that uses it. Names resolve against the
templates/ folder the file lives in, the file's own folder and the pack's
templates.""",
        bad=Example(_GOOD + '{% include "clauses/signature.md.j2" %}\n', path=_PATH),
        good=Example(
            _GOOD + '{% include "clauses/signature.md.j2" %}\n',
            path=_PATH,
            files={"templates/clauses/signature.md.j2": "Questions? Ask in the team channel.\n"},
        ),
        check=_check_missing,
    ),
)
