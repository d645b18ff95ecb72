"""`dispatch-kit lint` as users drive it: selection, configuration, input, suppressions, kinds.

Every test runs the real CLI in a throw-away project folder, so the user's
own pyproject.toml and agents never leak in.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "lint"
BLOCK = textwrap.dedent(
    """\
    Stream-safety:
    1. Before each tool call, print a progress line (one sentence, at most 80 characters).
    2. Keep every tool call under 60 seconds.
    3. When a read returns more than 500 lines, narrow the next read with offset/limit.
    """
)
WORKER = (
    textwrap.dedent(
        """\
    [Execute] Task `docs`: document the CLI flags

    Working directory: docs

    Write cli.md with one section per flag.

    ## Exit criteria
    1. `grep -q '^## --verbose' cli.md`

    """
    )
    + BLOCK
)


def write(base: Path, rel: str, text: str) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text) if not text.startswith("[") else text, encoding="utf-8")
    return path


def codes(result) -> list[str]:
    return [line.split()[1] for line in result.stdout.splitlines()]


def lint_json(cli, *args: str, cwd: Path, **kw) -> tuple[int, list[dict]]:
    result = cli("lint", "--format", "json", *args, cwd=cwd, **kw)
    assert result.returncode in (0, 1), result.output
    return result.returncode, json.loads(result.stdout)


# --------------------------------------------------------------------------- selection


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "broken" / "worker.md", tmp_path / "worker.md")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), {"DK101", "DK202", "DK203", "DK603", "DK604", "DK605"}),
        (("--select", "DK603"), {"DK603"}),
        (("--select", "hardcoded-model,starts-server"), {"DK603", "DK604"}),
        (("--select", "DK2"), {"DK202", "DK203"}),
        (("--select", "DK6", "--ignore", "writes-outside-workdir"), {"DK603", "DK604"}),
        (("--ignore", "DK1,DK2", "--ignore", "DK60"), set()),
        (("--select", "ALL", "--ignore", "DK6"), {"DK101", "DK202", "DK203"}),
    ],
)
def test_select_and_ignore_by_code_name_or_prefix(cli, broken, args, expected):
    result = cli("lint", "worker.md", *args, cwd=broken)
    assert set(codes(result)) == expected
    assert result.returncode == (1 if expected else 0)


@pytest.mark.parametrize("selector", ["DK999", "no-such-rule", "D"])
def test_unknown_selector_is_bad_usage(cli, broken, selector):
    result = cli("lint", "worker.md", "--select", selector, cwd=broken)
    assert result.returncode == 2
    assert f"unknown rule selector '{selector}'" in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- configuration


def test_pyproject_config_is_found_walking_up(cli, broken):
    (broken / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.dispatch-kit]\nignore = ["DK6", "prose-exit-criterion"]\n'
        'exclude = ["drafts", "generated/*.md"]\nmax-tasks = 6  # another command\'s key\n',
        encoding="utf-8",
    )
    write(broken, "drafts/idea.md", "[Execute] Half an idea.\n")
    write(broken, "generated/out.md", "[Execute] Generated.\n")
    write(broken, "generated/keep/deep.md", WORKER)
    sub = broken / "generated"
    result = cli("lint", "..", cwd=sub)
    assert set(codes(result)) == {"DK101", "DK203"}
    assert all(line.startswith("../worker.md:") for line in result.stdout.splitlines())


def test_cli_select_replaces_configured_select(cli, broken):
    (broken / "pyproject.toml").write_text(
        '[tool.dispatch-kit]\nselect = ["DK1"]\nignore = ["DK101"]\n', encoding="utf-8"
    )
    assert codes(cli("lint", "worker.md", cwd=broken)) == []
    assert set(codes(cli("lint", "worker.md", "--select", "DK101,DK603", cwd=broken))) == {
        "DK101",
        "DK603",
    }


def test_explicit_files_are_linted_even_if_excluded_unless_forced(cli, broken):
    (broken / "pyproject.toml").write_text(
        '[tool.dispatch-kit]\nexclude = ["worker.md"]\n', encoding="utf-8"
    )
    assert cli("lint", ".", cwd=broken).returncode == 0  # walking skips it
    assert cli("lint", "worker.md", cwd=broken).returncode == 1  # named: linted
    assert cli("lint", "worker.md", "--force-exclude", cwd=broken).returncode == 0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tool.dispatch-kit]\nselect = "DK1"\n', "select must be a list of strings"),
        ('[tool.dispatch-kit]\nignore = ["DK9999"]\n', "unknown rule selector 'DK9999'"),
        ("[tool.dispatch-kit\n", "invalid TOML"),
    ],
)
def test_bad_config_is_reported_with_its_path(cli, broken, toml, message):
    (broken / "pyproject.toml").write_text(toml, encoding="utf-8")
    result = cli("lint", "worker.md", cwd=broken)
    assert result.returncode == 2
    assert "pyproject.toml" in result.stderr and message in result.stderr


def test_config_that_is_not_utf8_is_refused_not_ignored(cli, broken):
    """Read in silence, the user's select/ignore would be dropped and the verdict change."""
    (broken / "pyproject.toml").write_bytes(
        b'[tool.dispatch-kit]\nselect = ["DK603"]\n# caf\xe9\n'
    )
    result = cli("lint", "worker.md", cwd=broken)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{broken / 'pyproject.toml'}:3:6: not UTF-8 (byte 0xe9); the lint settings here would "
        "be lost"
    ]


def test_config_option_names_the_file(cli, broken):
    (broken / "lint.toml").write_text('[tool.dispatch-kit]\nselect = ["DK603"]\n', "utf-8")
    assert codes(cli("lint", "worker.md", "--config", "lint.toml", cwd=broken)) == ["DK603"]


# --------------------------------------------------------------------------- input


def test_stdin(cli, tmp_path):
    result = cli("lint", "-", input="[Execute] Fix the parser.\n", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("-:1:1: DK101 ")


def test_stdin_filename_sets_the_path_and_the_file_kind(cli, tmp_path):
    skill = "---\nname: Bad_Name\ndescription: Does things.\n---\n\nBody.\n"
    result = cli("lint", "-", "--stdin-filename", "skills/x/SKILL.md", input=skill, cwd=tmp_path)
    assert "skills/x/SKILL.md:2:1: DK705 " in result.stdout
    assert "DK706" in result.stdout  # description says what, not when


def test_stdin_agent_option_names_the_target(cli, tmp_path):
    write(
        tmp_path,
        "agents/editor.md",
        "---\nname: editor\ndescription: Edits.\ntools: Read, Edit\n---\n",
    )
    prompt = WORKER.replace("Write cli.md", "Write cli.md, then commit it")
    result = cli("lint", "-", "--agent", "editor", input=prompt, cwd=tmp_path)
    assert codes(result) == ["DK401"]


def test_unreadable_file_is_exit_2_and_the_rest_is_still_linted(cli, broken):
    (broken / "bad.md").write_bytes(b"[Execute] caf\xe9\n")
    result = cli("lint", "bad.md", "worker.md", "missing.md", cwd=broken)
    assert result.returncode == 2
    assert "bad.md:1:14: not valid UTF-8 (byte 0xe9)" in result.stderr
    assert "missing.md: no such file or directory" in result.stderr
    assert "worker.md:1:1: DK101" in result.stdout
    assert "2 inputs could not be linted" in result.stderr


def test_summary_never_says_all_passed_when_an_input_was_unreadable(cli, tmp_path):
    (tmp_path / "clean.md").write_text("# Notes\n\nNothing to dispatch here.\n")
    result = cli("lint", "clean.md", "missing.md", cwd=tmp_path)
    assert result.returncode == 2
    assert "all checks passed" not in result.stderr
    assert "1 input could not be linted (above); 0 findings in the rest" in result.stderr


def test_two_stdins_are_bad_usage(cli, tmp_path):
    result = cli("lint", "-", "-", input="x", cwd=tmp_path)
    assert result.returncode == 2 and "stdin (-) can be given only once" in result.stderr


def test_walking_picks_files_by_kind_and_skips_the_rest(cli, tmp_path):
    write(tmp_path, "prompts/a.md", "[Execute] A.\n")
    write(tmp_path, "prompts/notes.txt", "[Execute] Not walked: .txt is linted only when named.\n")
    write(tmp_path, "node_modules/pkg/README.md", "[Execute] Dependency.\n")
    write(tmp_path, "build/x.md", "[Execute] Build output.\n")
    write(tmp_path, "templates/t.md.j2", "{% if %}\n")
    write(tmp_path, "skills/s/SKILL.md", "no frontmatter\n")
    write(tmp_path, "agents/a.md", "---\nname: a\ndescription: A.\ntools: Read, Shell\n---\n")
    write(tmp_path, ".claude-plugin/plugin.json", '{"name": "Bad Name"}\n')
    write(tmp_path, "package.json", '{"name": "not a manifest"}\n')
    write(tmp_path, "ci/workflow.yaml", "on: push\n")
    _, findings = lint_json(cli, ".", cwd=tmp_path)
    assert sorted({(f["path"], f["code"]) for f in findings}) == [
        (".claude-plugin/plugin.json", "DK711"),
        ("agents/a.md", "DK709"),
        ("prompts/a.md", "DK101"),
        ("prompts/a.md", "DK201"),
        ("prompts/a.md", "DK203"),
        ("skills/s/SKILL.md", "DK701"),
        ("templates/t.md.j2", "DK801"),
    ]
    explicit = cli("lint", "prompts/notes.txt", cwd=tmp_path)
    assert "prompts/notes.txt:1:1: DK101" in explicit.stdout


# --------------------------------------------------------------------------- suppressions


def test_markdown_next_line_and_file_suppressions(cli, tmp_path):
    prompt = WORKER.replace(
        "Write cli.md with one section per flag.",
        "<!-- dispatch-kit: ignore-next-line DK603 -->\nCompare with gpt-4o.\nAlso claude-3-opus.",
    )
    write(tmp_path, "p.md", prompt)
    result = cli("lint", "p.md", cwd=tmp_path)
    assert codes(result) == ["DK603"]  # only the unsuppressed line
    assert result.stdout.startswith("p.md:7:6: DK603")  # "Also claude-3-opus." on line 7
    write(tmp_path, "q.md", "<!-- dispatch-kit: ignore-file hardcoded-model -->\n" + prompt)
    assert cli("lint", "q.md", cwd=tmp_path).returncode == 0


def test_suppression_without_codes_covers_every_rule(cli, tmp_path):
    write(tmp_path, "p.md", "<!-- dispatch-kit: ignore-file -->\n[Execute] Fix it.\n")
    assert cli("lint", "p.md", cwd=tmp_path).returncode == 0


def test_jinja_and_yaml_suppressions(cli, tmp_path):
    write(
        tmp_path,
        "templates/t.md.j2",
        "{# dispatch-kit: ignore-next-line DK802 #}\nHello {{ name }}.\n",
    )
    write(
        tmp_path,
        "plan.yaml",
        "# dispatch-kit: ignore-file invalid-plan\ngoal: only a goal\n",
    )
    assert cli("lint", ".", cwd=tmp_path).returncode == 0
    without = cli("lint", ".", "--select", "DK802,DK205", cwd=tmp_path)
    assert without.returncode == 0  # the suppressions still apply under --select


def test_unused_suppression_is_reported(cli, tmp_path):
    write(tmp_path, "p.md", "<!-- dispatch-kit: ignore-next-line DK603 -->\n" + WORKER)
    result = cli("lint", "p.md", cwd=tmp_path)
    assert result.stdout.startswith("p.md:1:1: DK901 unused suppression of DK603")
    # a suppression of a rule that is not enabled is not "unused"
    assert cli("lint", "p.md", "--ignore", "DK603", cwd=tmp_path).returncode == 0


def test_unknown_code_in_a_directive_is_reported(cli, tmp_path):
    write(tmp_path, "p.md", "<!-- dispatch-kit: ignore-file DK603 DK999 -->\n" + WORKER)
    result = cli("lint", "p.md", cwd=tmp_path)
    assert "DK902 unknown rule 'DK999' in suppression" in result.stdout


def test_directives_in_code_are_examples(cli, tmp_path):
    write(
        tmp_path,
        "guide.md",
        "Write `<!-- dispatch-kit: kind=bogus -->` to ...\n\n```\n"
        "<!-- dispatch-kit: ignore-next-line DK999 -->\n```\n",
    )
    assert cli("lint", "guide.md", cwd=tmp_path).returncode == 0


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize(
    "head",
    [
        "[Execute] Fix the parser.\n",
        "# [Execute] Fix the parser\n",
        "<!-- a note for humans -->\n\n[Execute] Fix the parser.\n",
        "<!-- dispatch-kit: kind=execute -->\nFix the parser.\n",
        "<!-- dispatch-kit: kind=worker -->\nFix the parser.\n",
        "---\ntitle: x\n---\n<!-- dispatch-kit: kind=execute -->\nFix the parser.\n",
    ],
)
def test_explicit_markers_make_an_execute_prompt(cli, tmp_path, head):
    write(tmp_path, "p.md", head)
    assert "DK101" in codes(cli("lint", "p.md", cwd=tmp_path))


def test_marker_must_open_the_prompt(cli, tmp_path):
    write(tmp_path, "p.md", "Some notes.\n\n[Execute] is how worker prompts start.\n")
    assert cli("lint", "p.md", cwd=tmp_path).returncode == 0


def test_kind_directive_after_line_5_is_reported_not_used(cli, tmp_path):
    write(tmp_path, "p.md", "a\n\nb\n\nc\n<!-- dispatch-kit: kind=execute -->\n")
    result = cli("lint", "p.md", cwd=tmp_path)
    assert codes(result) == ["DK902"]
    assert "only count in the first 5 lines" in result.stdout


def test_kind_none_turns_prompt_rules_off(cli, tmp_path):
    write(tmp_path, "p.md", "<!-- dispatch-kit: kind=none -->\n[Execute] Use gpt-4o.\n")
    assert cli("lint", "p.md", cwd=tmp_path).returncode == 0


def test_worker_shape_without_marker_is_linted_as_execute(cli, tmp_path):
    unmarked = WORKER.replace("[Execute] ", "").replace(BLOCK, "")
    write(tmp_path, "p.md", unmarked)
    assert codes(cli("lint", "p.md", cwd=tmp_path)) == ["DK101"]


def test_executor_shape_without_marker_is_linted_as_executor(cli, tmp_path):
    write(
        tmp_path,
        "p.md",
        "You run on a schedule. Claim each ready item, spawn a worker for it, then wait for "
        "the workers to finish. If the queue is empty, answer NO_REPLY.\n",
    )
    # no sweep named for stale claims either: DK306, a warning
    assert set(codes(cli("lint", "p.md", cwd=tmp_path))) == {"DK302", "DK303", "DK304", "DK306"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plan-unbounded-fan-out.md", {"DK501"}),
        ("executor-waits.md", {"DK301", "DK302", "DK303", "DK304", "DK305", "DK306"}),
        ("worker-starts-server.md", {"DK202", "DK604"}),
        ("worker-writes-outside.md", {"DK605"}),
        ("retry-without-context.md", {"DK601", "DK602"}),
        ("plan-parallel-chain.md", {"DK403"}),
    ],
)
def test_realistic_bad_prompts(cli, name, expected):
    result = cli("lint", f"tests/fixtures/lint/bad/{name}", cwd=ROOT)
    assert set(codes(result)) == expected, result.output


def test_clean_fixtures_have_no_findings(cli):
    """Negations, quoted examples, documents and templates: none of it is a finding."""
    result = cli("lint", "tests/fixtures/lint/clean", cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, ""), result.output


# --------------------------------------------------------------------------- agents


AGENTS = {
    "agents/editor.md": "---\nname: editor\ndescription: Edits.\ntools: Read, Edit, Grep\n---\n",
    "agents/operator.md": "---\nname: operator\ndescription: Runs.\ntools: Read, Edit, Bash\n---\n",
    "agents/anything.md": "---\nname: anything\ndescription: Inherits every tool.\n---\n",
    "agents/nobash.md": ("---\nname: nobash\ndescription: No shell.\ndisallowedTools: Bash\n---\n"),
}


@pytest.mark.parametrize(
    ("agent", "fires"),
    [
        ("editor", True),
        ("operator", False),
        ("anything", False),
        ("nobash", True),
        ("unknown-agent", False),
        ("plugin-x:editor", True),
    ],
)
def test_bash_work_for_an_agent_without_bash(cli, tmp_path, agent, fires):
    for rel, text in AGENTS.items():
        write(tmp_path, rel, text)
    prompt = WORKER.replace(
        "Write cli.md with one section per flag.",
        "Write cli.md, run the tests and push the branch.",
    )
    write(tmp_path, "prompts/p.md", f"<!-- dispatch-kit: agent={agent} -->\n" + prompt)
    result = cli("lint", "prompts/p.md", cwd=tmp_path)
    assert ("DK401" in codes(result)) is fires, result.output


def test_agent_label_line_names_the_target(cli, tmp_path):
    write(tmp_path, "agents/editor.md", AGENTS["agents/editor.md"])
    prompt = WORKER.replace("Working directory: docs", "Agent: editor\n\nWorking directory: docs")
    prompt = prompt.replace("Write cli.md with one section per flag.", "Write cli.md; commit it.")
    write(tmp_path, "p.md", prompt)
    result = cli("lint", "p.md", cwd=tmp_path)
    assert codes(result) == ["DK401"]
    assert "agent 'editor' has no Bash (tools: Read, Edit, Grep)" in result.stdout


def test_a_prohibition_is_not_a_request(cli, tmp_path):
    write(tmp_path, "agents/editor.md", AGENTS["agents/editor.md"])
    prompt = WORKER.replace(
        "Write cli.md with one section per flag.",
        "Write cli.md. Do not commit or push; you cannot run commands.",
    )
    write(tmp_path, "p.md", "<!-- dispatch-kit: agent=editor -->\n" + prompt)
    assert cli("lint", "p.md", cwd=tmp_path).returncode == 0
