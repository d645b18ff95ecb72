"""Every ``dispatch-kit`` command a skill, agent, template or the README names must exist.

Agents copy commands out of the skills verbatim. A skill that says
``dispatch-kit plan validate`` after the command was renamed sends every
orchestrator into an error it cannot explain, so each distinct mention is run
with ``--help`` and must exit 0.
"""

from __future__ import annotations

import re
from collections import defaultdict

from conftest import ROOT

SOURCES = ("skills/**/*.md", "agents/*.md", "templates/**/*.j2", "README.md")

# `dispatch-kit` (possibly bin/dispatch-kit, possibly closing a quote) followed on the
# same line by a lowercase word, and maybe a second one: a subcommand and a sub-subcommand.
# A word counts only when it ends at a space, a quote, a backtick, punctuation that ends a
# clause, or the line end, so paths such as `lint prompts/x.md` give just `lint`.
_END = r"(?=[ \t`'\"),;:!?]|\.(?:\s|$)|$)"
_WORD = r"([a-z][a-z0-9]*(?:-[a-z0-9]+)*)" + _END
MENTION = re.compile(
    r"(?<![\w@.-])dispatch-kit[\"']?[ \t]+" + _WORD + r"(?:[ \t]+" + _WORD + r")?",
    re.MULTILINE,
)
# English words that follow the project's name in prose ("dispatch-kit is a pack").
# None of them may ever become a subcommand name.
PROSE = {
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "blocked",
    "be",
    "by",
    "can",
    "cli",
    "command",
    "commands",
    "does",
    "for",
    "from",
    "gives",
    "has",
    "in",
    "installs",
    "is",
    "it",
    "its",
    "knows",
    "maintainers",
    "of",
    "on",
    "or",
    "pack",
    "package",
    "plugin",
    "prints",
    "puts",
    "ships",
    "that",
    "the",
    "then",
    "to",
    "was",
    "will",
    "with",
}


def mentions_in(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(line, words) for each command mention; prose words are not commands."""
    found = []
    for match in MENTION.finditer(text):
        command, sub = match.group(1), match.group(2)
        if command in PROSE:
            continue
        words = (command,) if sub is None or sub in PROSE else (command, sub)
        found.append((text.count("\n", 0, match.start()) + 1, words))
    return found


def collect() -> dict[tuple[str, ...], list[str]]:
    where: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            for line, words in mentions_in(path.read_text(encoding="utf-8")):
                where[words].append(f"{path.relative_to(ROOT)}:{line}")
    return where


def test_parser_finds_commands_and_skips_prose() -> None:
    text = (
        "dispatch-kit is a pack for orchestrators.\n"
        "Run `dispatch-kit plan validate plan.yaml` first, then dispatch-kit check PLAN.\n"
        'hook: "${CLAUDE_PLUGIN_ROOT}/bin/dispatch-kit" hook pre-dispatch\n'
        "Lint with dispatch-kit lint prompts/worker.md.\n"
        "See /dispatch-kit:workspace-dispatch and /plugin install dispatch-kit@market.\n"
        "The dispatch-kit-style layout; dispatch-kit --version prints it.\n"
        "Finally run dispatch-kit demo.\n"
    )
    assert mentions_in(text) == [
        (2, ("plan", "validate")),
        (2, ("check",)),
        (3, ("hook", "pre-dispatch")),
        (4, ("lint",)),
        (7, ("demo",)),
    ]


def test_every_named_subcommand_has_working_help(cli) -> None:
    where = collect()
    assert where, f"no dispatch-kit command found in {SOURCES}; is the pattern stale?"
    failures = []
    for words, places in sorted(where.items()):
        result = cli(*words, "--help")
        status = "ok" if result.returncode == 0 else f"exit {result.returncode}"
        print(f"dispatch-kit {' '.join(words)} --help: {status} ({len(places)}x, {places[0]})")
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            failures.append(f"dispatch-kit {' '.join(words)} ({', '.join(places)}): {reason}")
    assert not failures, "\n".join(failures)
