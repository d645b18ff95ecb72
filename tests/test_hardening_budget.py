"""Issue 13, severe 4 (the rest): the hook's budget on any input.

Two defects remained after the patterns were made linear. DK604's look-back
walked every "server" of a long token ("serverserver...") back to the token's
start, and fell back to the top of the text after a run of blanks: quadratic.
And a linear rule is still a second a megabyte, while the hook runs before
every dispatch: the gate now lints a prompt's first and last part and says
what it skipped. Rules' answers are held to the exhaustive search they
shortcut, so normal prompts lint exactly as before.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conftest import timed_lint
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_kit.lint import engine, gate, prose
from dispatch_kit.lint.rules import hygiene

LIMIT = 3.0  # seconds per prompt on a busy machine; the quadratic walk took hours at 1 MB
TAIL = (
    "\nStream-safety: print one progress line before each tool call; no call over 60 s; "
    "read files over 500 lines with offset/limit.\n\nWorking directory: docs\n\n"
    "## Exit criteria\n1. `test -s cli.md`\n"
)




def lint_seconds(prompt: str, tmp_path: Path) -> float:
    return timed_lint(prompt, tmp_path, LIMIT)


def test_a_long_token_of_server_is_linear(tmp_path: Path) -> None:
    # 100 KB: 16,000 "server"s, each walked back over the whole token before.
    lint_seconds("[Execute] do it\n" + "server" * 16_000, tmp_path)


def test_servers_after_long_blank_runs_are_linear(tmp_path: Path) -> None:
    # A run of over 40 blanks sent every later "server" back to the top of the text.
    lint_seconds("[Execute] do it\n" + ("server" + " " * 45) * 4_000, tmp_path)


def test_a_repeated_key_word_searches_once(tmp_path: Path) -> None:
    """Past _MAX_CANDIDATES key words all_negated searches once instead of a window each."""
    calls = []
    original = hygiene._server_starts

    def counting(flat: str, word: int) -> list[int]:
        calls.append(word)
        return original(flat, word)

    hygiene._server_starts = counting
    try:
        lint_seconds("[Execute] do it\n" + "server " * 50_000, tmp_path)
    finally:
        hygiene._server_starts = original
    assert calls == []


TOKENS = st.sampled_from([
    "server", "servers", "server ", "start ", "spin up ", "a ", "the ", "local ", "dev ",
    "long-running ", "npm ", "run ", "dev", "python3 -m http.server", "next dev", "context ",
    "do not ", "never ", ". ", "\n", " " * 45, "\t", "x", "manage.py runserver", "watcher ",
    "docker compose up", "nohup ", "uvicorn app", "-", "http.", "up ",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, max_size=40), st.integers(min_value=0, max_value=1))
def test_server_windows_find_what_a_full_search_finds(tokens: list[str], cap: int) -> None:
    """The bounded look-back (and the switch to one search) answers as every start would."""
    text = "".join(tokens)
    region = SimpleNamespace(lower=text, flat=text.replace("\n", " "))
    exhaustive = prose.all_negated(region, hygiene._SERVER_ANYWHERE)  # type: ignore[arg-type]
    saved = prose._MAX_CANDIDATES
    prose._MAX_CANDIDATES = saved if cap else 0
    try:
        windows = prose.all_negated(
            region, hygiene._SERVER_ANYWHERE, hygiene._SERVER_WORDS,  # type: ignore[arg-type]
            hygiene._server_starts,
        )
    finally:
        prose._MAX_CANDIDATES = saved
    assert windows == exhaustive


def test_the_gate_lints_at_most_max_prompt(monkeypatch, tmp_path: Path) -> None:
    seen = []
    original = engine.lint_text

    def spy(text, *args, **kwargs):
        seen.append(len(text))
        return original(text, *args, **kwargs)

    monkeypatch.setattr(engine, "lint_text", spy)
    prompt = "[Execute] Task `docs`: write cli.md\n" + "server " * 150_000 + "\n" + TAIL
    code, text = gate.check(prompt, "dispatch-worker", str(tmp_path))
    assert seen and max(seen) <= gate.MAX_PROMPT
    first = text.splitlines()[0]
    assert first.startswith("dispatch-prompt:2:1: warning: this prompt is ")
    assert "did not check lines 2-" in first


def test_a_long_prompt_keeps_its_tail_and_line_numbers(tmp_path: Path) -> None:
    """Stream-safety and exit criteria close a prompt: cutting them off would report both."""
    body = "".join(f"Note {n}: the flag is documented in cli.md.\n" for n in range(8_000))
    prompt = "[Execute] Task `docs`: write cli.md\n" + body + "Start the dev server.\n" + TAIL
    assert len(prompt) > gate.MAX_PROMPT
    code, text = gate.check(prompt, "dispatch-worker", str(tmp_path))
    assert "DK101" not in text and "DK201" not in text and "DK203" not in text
    server_line = prompt[: prompt.index("Start the dev server")].count("\n") + 1
    assert f"dispatch-prompt:{server_line}:1: DK604" in text
    assert code == gate.ALLOW


def test_a_prompt_under_the_cap_is_linted_whole(tmp_path: Path) -> None:
    prompt = "[Execute] Task `docs`: write cli.md\n" + "ok. " * 1000 + TAIL
    code, text = gate.check(prompt, "dispatch-worker", str(tmp_path))
    assert (code, text) == (gate.ALLOW, "")
