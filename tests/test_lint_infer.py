"""Kind inference (issue 14): what an unmarked prompt is, read from its content.

Prompts written elsewhere carry none of the pack's markers. The inference gives
them a kind (execute, plan, inspect, executor, retry) and a confidence, so the
kind's rules run on them; the hook reports findings that rest on a likely
reading as warnings. These tests hold the features (not the wording of any one
corpus entry), the marker's precedence, the severity by confidence, and the
linear time every pattern owes the hook.
"""

from __future__ import annotations

import time

import pytest

from dispatch_kit.lint import kinds
from dispatch_kit.lint.config import Config
from dispatch_kit.lint.document import Document
from dispatch_kit.lint.engine import lint_text
from dispatch_kit.lint.infer import infer


def read(text: str) -> tuple[str, str | None]:
    region = Document(text, "p.md", "prompt").region
    assert region is not None
    return region.kind, region.confidence


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # imperative change verbs on code or files
        ("Add a `--verbose` flag to cli/main.go and a test for it, then commit.\n", "execute"),
        (
            "You are a backend engineer. Implement the cache layer.\n\n1. Create the models\n",
            "execute",
        ),
        ("In lib/, rename `OldName` to `NewName` everywhere and update the docs.\n", "execute"),
        # planning vocabulary, a task list to produce, several agents to start
        ("Break the migration into tasks for the team:\n1. a\n2. b\n", "plan"),
        ("You are the planner. Produce the task list for the release.\n", "plan"),
        ("Kick off both agents at the same time and merge what they return.\n", "plan"),
        # read-only vocabulary, review verbs, a report as the only deliverable
        ("Review the diff for race conditions. Do not modify any files.\n", "inspect"),
        ("Audit the auth module and write your findings as a markdown document.\n", "inspect"),
        ("Check whether the cache is ever invalidated and tell me where.\n", "inspect"),
        # a schedule or a queue, and workers to start
        (
            "Runs every 20 minutes. Take up to 3 tickets from the queue and spawn a worker for "
            "each.\n",
            "executor",
        ),
        ("Go through the issues labelled `bot` and launch an agent for each one.\n", "executor"),
        # retry vocabulary at the top
        ("The previous attempt failed with a timeout. Try the smaller batch size.\n", "retry"),
        ("That did not work, try again.\n", "retry"),
    ],
)
def test_unmarked_prompts_are_read_by_their_features(text, kind):
    assert read(text) == (kind, kinds.LIKELY)


@pytest.mark.parametrize(
    "text",
    [
        "Hello there.\n",
        "What does the `--dry-run` flag do?\n",
        "| step | what |\n|---|---|\n| 1 | run the tests |\n",
    ],
)
def test_nothing_to_go_on_stays_unknown(text):
    assert read(text) == ("unknown", None)


def test_a_marker_wins_over_the_content():
    text = "[Inspect] Implement the cache layer in src/cache.py and commit.\n"
    assert read(text) == ("inspect", kinds.EXPLICIT)


def test_sure_shapes_are_sure():
    assert infer("Retry 2/3 of task x.\n", "Retry 2/3 of task x.") == ("retry", kinds.SURE)
    executor = "List ready issues; none: NO_REPLY. Claim each, then spawn a worker.\n"
    assert infer(executor, executor.splitlines()[0]) == ("executor", kinds.SURE)


def test_questions_and_quoted_prompts_are_not_requests():
    assert read("Tell me whether we should commit and push.\n")[0] != "execute"
    assert read("Here is a prompt:\n\n```\nFix the parser and commit.\n```\n")[0] != "execute"


def test_hard_wrapped_sentences_are_read_whole():
    text = "Every hour: take two issues labelled `ready` and then start a\nworker for each.\n"
    assert read(text)[0] == "executor"


WORK = "Implement the retry limit in src/retry.py and commit it.\n"


def test_findings_on_a_likely_kind_are_errors_in_ci_and_warnings_in_the_hook():
    ci = {f.code: f for f in lint_text(WORK, config=Config())}
    hook = {
        f.code: f
        for f in lint_text(WORK, config=Config(), default_kind="dispatch", soften_inferred=True)
    }
    assert {"DK101", "DK201", "DK203"} <= set(ci) and set(ci) == set(hook)
    assert ci["DK101"].severity == "error" and hook["DK101"].severity == "warning"
    assert "read as a likely [Execute] prompt" in ci["DK101"].message


def test_rules_that_run_on_the_default_kind_keep_their_severity_in_the_hook():
    """DK402 runs on every dispatch prompt, inferred or not: it does not rest on the reading."""
    text = "Rename `A` to `B` in lib/. Don't commit \u2014 send me the diff so I can commit it.\n"
    found = lint_text(text, config=Config(), default_kind="dispatch", soften_inferred=True)
    (dk402,) = [f for f in found if f.code == "DK402"]
    assert dk402.severity == "error" and "read as" not in dk402.message


@pytest.mark.parametrize(
    "cap",
    [
        "Take at most 6 of them.",
        "Pick no more than five ready items.",
        "Handle up to 3 per run.",
        "Handle four repos per run at most.",
        "limit: 5",
        "Dispatch max 6.",
    ],
)
def test_executor_caps_as_people_write_them(cap):
    text = (
        "[Executor] Cron run, killed after 5 minutes. List ready issues; if none, print NO_REPLY."
        f"\n{cap}\nClaim each, then spawn one worker for it and exit. A sweep resets stale "
        "claims.\n"
    )
    assert [f.code for f in lint_text(text, config=Config())] == []


@pytest.mark.parametrize("not_a_cap", ["Keep lines to at most 80 characters.", "(max 5 minutes)"])
def test_a_number_of_characters_or_minutes_is_no_cap(not_a_cap):
    text = (
        "[Executor] Cron run, killed after 5 minutes. List ready issues; if none, print NO_REPLY."
        f"\n{not_a_cap}\nClaim each, then spawn one worker for it and exit. A sweep resets stale "
        "claims.\n"
    )
    assert [f.code for f in lint_text(text, config=Config())] == ["DK303"]


# The words the inference and the new rule wordings key on, for hostile shapes.
TOKENS = (
    "break into ",
    "design the ",
    " and ",
    ", ",
    "you should ",
    "retry attempt ",
    "attempt 2 of ",
    "every 5 minutes ",
    "spawn ",
    "\n- ",
    "at most ",
    "four repos per run ",
    "only take one ",
    "reset ",
    "claim ",
    "move ",
    "Done when:\n",
    "task list:",
    "tasks:\n",
    "| a |\n",
    "you're in ",
    "work in `",
    "`",
    "{{",
    "before each call ",
    "one line ",
    "write ",
    "the ",
    "a/b",
    "x.md ",
    "Directory: ",
    "report their results ",
    "post a summary ",
    "let me know how ",
    "\n\n",
)


def _seconds(text: str) -> float:
    """The best of three: a shared machine pauses at random, never speeds up."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        lint_text(text, config=Config(), default_kind="dispatch", soften_inferred=True)
        best = min(best, time.perf_counter() - start)
    return best


def _ratio(token: str, shape: str, size: int) -> float:
    texts = [
        token * (n // len(token)) if shape == "repeat" else token + "a" * n
        for n in (size, 8 * size)
    ]
    small, large = (_seconds(text) for text in texts)
    return large / max(small, 2e-3)


@pytest.mark.parametrize("shape", ["repeat", "filler"])
def test_inference_and_rules_stay_linear_on_hostile_input(shape):
    """Eight times the input may cost about eight times the time, never sixty-four: the
    bound (24x) leaves room for a busy machine's noise. A case over it is measured again
    (up to five times) before it fails: noise only ever inflates a ratio."""
    _seconds(" ".join(TOKENS))  # compile every pattern first: not part of any ratio
    for token in TOKENS:
        ratio = _ratio(token, shape, 20_000)
        tries = 1
        while ratio > 24 and tries < 5:
            ratio = min(ratio, _ratio(token, shape, 20_000))
            tries += 1
        assert ratio <= 24, f"{shape} {token!r}: {ratio:.1f}x for 8x the input"


def test_the_demos_unmarked_prompt_is_the_corpus_entry_and_reads_as_an_executor():
    """The demo shows a prompt from the wild-prompt corpus; both must stay the same text."""
    from pathlib import Path

    from dispatch_kit.demo import UNMARKED_PROMPT

    corpus = Path(__file__).parent / "fixtures" / "wild-prompts"
    assert (corpus / "executor-waits-and-summarises.md").read_text() == UNMARKED_PROMPT
    assert read(UNMARKED_PROMPT) == ("executor", kinds.LIKELY)
    found = lint_text(UNMARKED_PROMPT, config=Config())
    assert {f.code for f in found} == {"DK302", "DK306"}
