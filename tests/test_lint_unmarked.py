"""DK103: an unmarked prompt that asks for edits or commands is told to carry a kind marker.

Most unmarked work orders are read as [Execute] prompts from their content
(kind inference, ``dispatch_kit.lint.infer``) and get the execute rules
directly; DK103 is the net for requests the reading cannot place, so that
leaving the marker out is never a way around the stream-safety and
exit-criteria rules. False positives are bugs: reading, asking, forbidding and
describing must never fire it, and neither must the skills, agents and
documents that describe workers.
"""

from __future__ import annotations

import json

import pytest

from dispatch_kit.lint.config import Config
from dispatch_kit.lint.engine import lint_text

CODE = "DK103"
WORK = "Run the database migrations, then run the test suite.\n"


def dk103(text: str, **kwargs) -> list:
    return [f for f in lint_text(text, config=Config(), **kwargs) if f.code == CODE]


# Requests the kind inference cannot place: DK103 warns.
FIRES = [
    WORK,
    "Verify the change: run `pytest -q` and report pass or fail.\n",
    "Go ahead and run the migrations, then run the test suite.\n",
    "You should run `make lint` and then the tests.\n",
]
# Plain work orders: read as likely [Execute] prompts, so the execute rules run instead.
READ_AS_WORK = [
    "You should edit payments.yaml and raise max_retries to 5.\n",
    "I need you to write tests for the parser.\n",
    "Your task is to refactor the payment module and run the tests.\n",
    "Implement the parser change in src/, run the tests and commit.\n",
    "Fix the failing test in tests/test_tokenizer.py.\n",
    "Please update the config in config/app.yaml to enable retries.\n",
    "Read src/parser.py and fix the bug in tokenize().\n",
    "Refactor the payment module. When done, commit and push.\n",
    "- Add a section on flags to README.md\n- Run `make test`\n",
    "Write the findings to notes/findings.md.\n",
    "**Fix** the tokenizer so tabs count as whitespace.\n",
    "Once the tests pass, commit the change.\n",
    "Update the docs for the new flag.\n",
    # a prohibition covers only its own clause
    "Do not touch the CLI; fix the tokenizer in src/tokenizer.py and commit it.\n",
]

QUIET = [
    "Do not edit anything, just read src/config.py and answer: which port does it use?\n",
    "Read the config and tell me the port; do not edit anything.\n",
    "Does it run the tests?\n",
    "Does the CI run the tests on every push\n",
    "Tell me whether we should commit and push.\n",
    "Explain how you would fix the parser.\n",
    "What would it take to refactor the parser?\n",
    "Tell me the command to run the tests.\n",
    "Read the README and tell me how to run the tests.\n",
    "Never commit, never push, never run the tests.\n",
    "Search the codebase for uses of `retry()` and list them. Do not modify any files.\n",
    "Read the logs and report the error. Don't fix it.\n",
    "Review the diff in the last commit for bugs; report them, do not fix them.\n",
    "Find where the retry limit is implemented and report the file and line.\n",
    "Summarise what the worker changed and whether it ran the tests.\n",
    "Look at the last commit and explain what it changed.\n",
    "Write a summary of the failing tests.\n",
    "Write your answer in the reply, not to a file.\n",
    "Write `PASS` or `FAIL` as the first line of your answer.\n",
    "Create a short report of what you found.\n",
    "Update me when you are done.\n",
    "Run a search across the codebase for all test files and list them.\n",
    "Draft a prompt that tells a worker to fix the parser and commit.\n",
    "You could fix this, but first tell me what you see.\n",
    "Review the docs. Poll the CI status every 30 seconds.\n",
    "The script runs the tests and commits the result.\n",
    "Here is a worker prompt:\n\n```\nFix the parser and commit.\n```\n\nIs it well formed?\n",
    "| step | what |\n|---|---|\n| 1 | run the tests |\n",
    "# Notes from the retro\n\nOne worker kept polling; another started a server.\n",
    # text for the reply, not a change to any file
    "Write a commit message for the staged diff.\n",
    "Write a test plan for the login flow and send it back to me.\n",
    "Write a code review of the diff in your reply.\n",
    "Run me through how the tests work.\n",
    "Run through the scripts in package.json and explain what each does.\n",
    "Add up the numbers in data/sales.csv and tell me the total.\n",
    "Create a list of files in src/ that import requests, and report it.\n",
    # a pasted log is one long "sentence" full of verbs, none of them asked for
    "Summarise these commits for the release notes:\n\n"
    + "".join(f"{i:07x} fix parser edge case {i}\n" for i in range(300)),
]


@pytest.mark.parametrize("default_kind", ["unknown", "dispatch"])  # a prompt file, a hook prompt
@pytest.mark.parametrize("text", FIRES)
def test_an_unmarked_request_for_work_fires_once_at_the_first_line(text, default_kind):
    found = dk103("\n<!-- a comment line -->\n" + text, default_kind=default_kind)
    assert len(found) == 1, found
    (finding,) = found
    assert (finding.line, finding.column, finding.severity) == (3, 1, "warning")
    assert "has no kind marker; start it with [Execute]" in finding.message
    assert "[Inspect] if it only reads" in finding.message


@pytest.mark.parametrize("soften", [False, True])  # CI, the pre-dispatch hook
@pytest.mark.parametrize("text", READ_AS_WORK)
def test_a_plain_work_order_gets_the_execute_rules_instead(text, soften):
    default_kind = "dispatch" if soften else "unknown"
    found = lint_text(text, config=Config(), default_kind=default_kind, soften_inferred=soften)
    codes = {f.code for f in found}
    assert CODE not in codes and {"DK101", "DK201"} <= codes, found
    (dk101,) = [f for f in found if f.code == "DK101"]
    assert "read as a likely [Execute] prompt" in dk101.message
    # resting on a likely reading: an error in CI, a warning in the hook
    assert dk101.severity == ("warning" if soften else "error")


@pytest.mark.parametrize("default_kind", ["unknown", "dispatch"])
@pytest.mark.parametrize("text", QUIET)
def test_reading_asking_forbidding_and_describing_do_not_fire(text, default_kind):
    assert dk103(text, default_kind=default_kind) == []


def test_the_message_quotes_the_request():
    (finding,) = dk103("Some background first.\n\nThen run `make migrate` against staging.\n")
    assert finding.line == 1
    assert "asks to 'run `make migrate` against staging'" in finding.message


@pytest.mark.parametrize("marker", ["[Execute]", "[Plan]", "[Inspect]", "[Retry]", "[Executor]"])
def test_a_marked_prompt_is_not_warned(marker):
    assert dk103(f"{marker} {WORK}") == []


@pytest.mark.parametrize("kind", ["execute", "inspect", "dispatch", "none"])
def test_a_kind_directive_counts_as_a_marker(kind):
    assert dk103(f"<!-- dispatch-kit: kind={kind} -->\n{WORK}") == []


def test_a_template_is_checked_with_its_tags_masked():
    text = "{# a worker prompt #}\nRun the tests in {{ module }}, then run the linters.\n"
    (finding,) = dk103(text, path="worker.md.j2", file_kind="template")
    assert finding.line == 2


@pytest.mark.parametrize("file_kind", ["skill", "agent", "document"])
def test_files_that_describe_workers_are_not_checked(file_kind):
    assert dk103(WORK, file_kind=file_kind) == []


def test_can_be_suppressed_like_any_rule():
    text = f"<!-- dispatch-kit: ignore-next-line {CODE} -->\n{WORK}"
    assert dk103(text) == []


def test_cli_warns_on_prompt_files_and_stdin_but_not_on_skills_agents_or_docs(cli, tmp_path):
    description = (
        "Workers implement the change, run the tests and commit. Fix the parser and commit.\n"
    )
    files = {
        "prompts/unmarked.md": WORK,
        "prompts/inspect.md": "[Inspect] Read src/config.py and tell me the port.\n",
        "prompts/read-only.md": "Read the config and tell me the port; do not edit anything.\n",
        "skills/dispatch/SKILL.md": (
            "---\nname: dispatch\ndescription: Dispatches workers. Use when work is split.\n"
            "---\n\n" + description
        ),
        "agents/worker.md": (
            "---\nname: worker\ndescription: Use for one task.\ntools: Read, Edit, Bash\n---\n\n"
            + description
        ),
        "README.md": description,
        "docs/howto.md": description,
        "references/loop.md": description,
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    result = cli("lint", "--select", CODE, "--format", "json", ".", cwd=tmp_path)
    assert result.returncode == 1, result.output
    assert [(f["path"], f["line"]) for f in json.loads(result.stdout)] == [
        ("prompts/unmarked.md", 1)
    ]
    piped = cli("lint", "--select", CODE, "-", input=WORK, cwd=tmp_path)
    assert piped.returncode == 1 and f" {CODE} " in piped.stdout


def test_a_long_pasted_text_is_read_in_linear_time(monkeypatch):
    """A hook lints every dispatch: a pasted 2,000-line log must not make it quadratic.

    Counted, not timed: each candidate verb may scan its sentence for a negation
    only a bounded number of times, however long the sentence.
    """
    from dispatch_kit.lint import prose

    calls = []
    real = prose.Sentence.negated_at
    monkeypatch.setattr(
        prose.Sentence, "negated_at", lambda self, i: calls.append(i) or real(self, i)
    )
    # One paragraph with no sentence end: one 90 KB sentence, 4,000 verbs after commas.
    lines = "".join(f"do not fix item {i}, fix item {i + 1} only later\n" for i in range(2000))
    dk103("Background for the release:\n\n" + lines)
    assert 0 < len(calls) <= 2 * 12  # two patterns, at most a dozen tries each
