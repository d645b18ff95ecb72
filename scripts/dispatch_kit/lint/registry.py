"""The rule catalogue: one :class:`Rule` per check, gathered from the family modules.

Modelled on how mature linters keep rules honest: each rule is one unit that
carries its stable code, kebab-case name, severity, the one-line message that
says what to do, the reason it exists, and a bad and a good example. The CLI,
``dispatch-kit rule``, the generated ``docs/rules.md`` and the tests all read
this one list, and the tests lint every example (bad must fire, good must not),
so a rule cannot drift from its documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import MappingProxyType

from dispatch_kit.errors import InputError
from dispatch_kit.lint.record import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any

# A check yields (line, column, message or None for the rule's default message).
Hit = tuple[int, int, "str | None"]
Check = Callable[["Any"], Iterable[Hit]]

SEVERITIES = ("error", "warning")
# Where a rule runs: on the prompt a file carries (by prompt kind), on the file
# itself (by file kind), or in the engine after every other rule (suppressions).
SCOPES = ("prompt", "file", "meta")


class Example(Record):
    """A documented example, small enough to read and real enough to lint.

    ``path`` is where the example sits inside a throw-away folder; ``files``
    are the other files it needs there (an agent definition, a reference).
    """

    text: str
    path: str = "prompt.md"
    files: Mapping[str, str] = MappingProxyType({})


class Rule(Record):
    code: str
    name: str
    severity: str
    message: str
    rationale: str
    applies_to: str
    bad: Example
    good: Example
    scope: str = "prompt"
    kinds: frozenset[str] = frozenset()
    check: Check | None = None
    fixable: bool = False

    def problems(self) -> list[str]:
        """Ways this rule breaks the catalogue's conventions (the tests require none)."""
        found = []
        if self.severity not in SEVERITIES:
            found.append(f"severity {self.severity!r}")
        if self.scope not in SCOPES:
            found.append(f"scope {self.scope!r}")
        if self.name != self.name.lower() or " " in self.name:
            found.append(f"name {self.name!r} is not kebab-case")
        if "\n" in self.message:
            found.append("message spans lines")
        if self.scope != "meta" and self.check is None:
            found.append("no check")
        return found


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every rule, sorted by code (imports the family modules on first use)."""
    from dispatch_kit.lint.rules import RULES

    return tuple(sorted(RULES, key=lambda r: r.code))


@cache
def _index() -> dict[str, Rule]:
    index: dict[str, Rule] = {}
    for rule in all_rules():
        index[rule.code.lower()] = rule
        index[rule.name] = rule
    return index


def find(code_or_name: str) -> Rule | None:
    """The rule with this code (any case) or kebab-case name, or None."""
    return _index().get(code_or_name.strip().lower())


def get(code_or_name: str) -> Rule:
    rule = find(code_or_name)
    if rule is None:
        raise InputError(f"unknown rule '{code_or_name}'; `dispatch-kit rule --list` lists them")
    return rule


def resolve(selector: str) -> frozenset[str]:
    """The codes a selector means: ``ALL``, a code, a name, or a code prefix such as ``DK1``."""
    text = selector.strip()
    if text.upper() == "ALL":
        return frozenset(r.code for r in all_rules())
    rule = find(text)
    if rule is not None:
        return frozenset({rule.code})
    prefix = text.upper()
    matched = frozenset(r.code for r in all_rules() if r.code.startswith(prefix))
    if not matched or len(prefix) < 2:
        raise InputError(
            f"unknown rule selector '{selector}': give a code (DK101), a prefix (DK1) or a name "
            "(missing-stream-safety); `dispatch-kit rule --list` lists them"
        )
    return matched


def resolve_all(selectors: Iterable[str]) -> frozenset[str]:
    codes: set[str] = set()
    for selector in selectors:
        codes |= resolve(selector)
    return frozenset(codes)
