"""Issue 13, severe 4: prompts on which the linter backtracked for seconds to minutes.

Each case is a shape the adversarial run found (or the fuzz suite then found),
at a size where the old patterns took far longer than the limit here, linted
in-process under a hard alarm: a pattern that is not linear in its input fails
by timing out, not by hanging the suite. The rewritten scanners are also held
to the old patterns' answers on small inputs, where those still finish.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import hard_limit, timed_lint
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_kit.lint import suppress
from dispatch_kit.lint.rules import exit_criteria

LIMIT = 3.0  # seconds per prompt on a busy CI machine; the old patterns took 25-162 s


def lint(prompt: str, tmp_path: Path) -> float:
    return timed_lint(prompt, tmp_path, LIMIT)


CASES = {
    "criteria line of backticks": "[Execute] do it\n\n## Exit criteria\n\n- " + "`" * 24_000 + "a",
    "[Execute] ] load aaaa": "[Execute] ] load " + "a" * 40_000,
    "unclosed markdown suppressions": "[Execute] x\n" + "<!-- dispatch-kit: " * 8_500,
    "suppression then blanks": "[Execute] x\n<!-- dispatch-kit: " + " " * 160_000,
    "unclosed jinja comments": "{# dispatch-kit: " * 15_000,
    "jinja openers": "{{ " * 80_000,
    "attempt then blanks": "[Retry] previous attempt " + " " * 200_000,
    "at most then blanks": "[Execute] dispatch at most" + " " * 200_000 + "x",
    "one long criterion of brackets": "[Execute] x\n\n## Exit criteria\n\n- " + "(" * 400_000,
    "blank lines": "---\nname: x\n" + "\n \n" * 100_000,
    "server on one line": "[Execute] x\n\n## Exit criteria\n\n- " + "server " * 60_000,
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_prompt_lints_in_time(name: str, tmp_path: Path) -> None:
    assert lint(CASES[name], tmp_path) < LIMIT


@pytest.mark.parametrize("style", ["markdown", "jinja", "yaml"])
def test_lint_file_of_unclosed_suppressions_in_time(style: str, tmp_path: Path) -> None:
    from dispatch_kit.cli import main

    suffix, text = {
        "markdown": (".md", "<!-- dispatch-kit: " * 16_000),
        "jinja": (".j2", "{# dispatch-kit: " * 16_000),
        "yaml": (".yaml", "# dispatch-kit: ignore-file\n" + "{{ " * 80_000),
    }[style]
    target = tmp_path / f"prompt{suffix}"
    target.write_text(text)
    with hard_limit(LIMIT * 2):
        code = main(["lint", str(target), "--format", "json"])
    assert code in (0, 1)


# --- the rewritten scanners give the old patterns' answers ----------------------------------

OLD = {
    suppress.MARKDOWN: re.compile(r"<!--\s*dispatch-kit:\s*(.*?)\s*-->"),
    suppress.JINJA: re.compile(r"\{#-?\s*dispatch-kit:\s*(.*?)\s*-?#\}", re.S),
    suppress.HASH: re.compile(r"(?:^|(?<=\s))#[ \t]*dispatch-kit:[ \t]*(.*?)[ \t]*$", re.M),
}
PIECES = st.lists(st.sampled_from(["<!--", "-->", "dispatch-kit:", " ", "\n", "\t", "x", "-",
                                   "#}", "{#", "{#-", "#", "`", "\r", "ignore-file"]),
                  max_size=14).map("".join)


@settings(max_examples=300, deadline=None)
@given(PIECES)
def test_directive_bodies_match_the_old_patterns(text: str) -> None:
    for opener, old in OLD.items():
        assert list(suppress._bodies(text, opener)) == [
            (m.start(), m.group(1)) for m in old.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["]", " load ", "load", " ", "\n", "then", ":", "x", "THEN"]),
                max_size=10).map("".join))
def test_composite_load_matches_the_old_pattern(text: str) -> None:
    old = re.compile(r"\]\s*load\s+\S+.*\bthen\s*:", re.I)
    assert exit_criteria._loads_then(text) == bool(old.search(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["`", "``", "a", " ", "b c"]), max_size=10).map("".join))
def test_code_span_agrees_with_the_old_pattern_on_balanced_spans(text: str) -> None:
    old = re.compile(r"(`+)(.+?)\1").search(text)
    new = exit_criteria._code_span(text)
    if new is not None:
        assert old is not None  # never a span where the old pattern saw none
    if old is not None and old.group(1) == "`" and "`" not in old.group(2):
        assert new == old.group(2)


def test_bench_generator_is_importable() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import adversarial
    finally:
        sys.path.pop(0)
    names = [name for name, _ in adversarial.cases(64)]
    assert len(names) == len(set(names)) > 500
