"""Every ``dispatch-kit`` command a skill, agent, template or the README names must exist.

Agents copy commands out of the skills verbatim. A skill that says
``dispatch-kit plan validate`` after the command was renamed sends every
orchestrator into an error it cannot explain, so each distinct mention is run
with ``--help`` and must exit 0.

Skills, agents and templates are read whole: they are terse instructions, and
a command named in their prose is copied as readily as one in code. The
README is long prose about the project, so only its code (spans and fenced
blocks) is read there; its sentences may say "dispatch-kit knows" freely.
"""

from __future__ import annotations

import re
from collections import defaultdict

from conftest import ROOT

SOURCES = ("skills/**/*.md", "agents/*.md", "templates/**/*.j2", "README.md")
CODE_ONLY = ("README.md",)
# Fenced code blocks, and inline code spans (a run of backticks closed by the same run).
FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)", re.M | re.S)
SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)

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


def code_only(text: str) -> str:
    """``text`` with everything but Markdown code blanked (same length and lines)."""
    keep = [match.span() for match in FENCE.finditer(text)]
    masked = FENCE.sub(lambda m: " " * len(m.group(0)), text)
    keep += [match.span() for match in SPAN.finditer(masked)]
    out = ["\n" if c == "\n" else " " for c in text]
    for start, end in keep:
        out[start:end] = text[start:end]
    return "".join(out)


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
            text = path.read_text(encoding="utf-8")
            if pattern in CODE_ONLY:
                text = code_only(text)
            for line, words in mentions_in(text):
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


def test_readme_prose_is_not_read_but_its_code_is() -> None:
    text = (
        "Only dispatch-kit knows the rules; dispatch-kit alone is fast.\n"
        "Run `dispatch-kit lint prompts/` or:\n"
        "```sh\n"
        "dispatch-kit plan validate plan.yaml\n"
        "```\n"
        "and ``dispatch-kit rule DK101`` explains one.\n"
    )
    assert [words for _, words in mentions_in(code_only(text))] == [
        ("lint",),
        ("plan", "validate"),
        ("rule",),
    ]
    assert [line for line, _ in mentions_in(code_only(text))] == [2, 4, 6]


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
