"""``dispatch-kit render``: prompts from plans and variables files, and every way input can be bad.

The orchestrator pastes what render prints straight into a dispatch, so a
prompt with a hole in it (a variable nobody set) or without its stream-safety
block is a silent failure two steps later. These tests hold render to: exit 2
with file:line on every defect, the sandbox closed, and the shared clauses
present exactly where the contract puts them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, cli_env, run_cli

PLAN = "examples/wordcount/plan.yaml"
CHECK = "tests/fixtures/check-counter-failed.json"
TEMPLATES = ROOT / "templates"
VARS = EXAMPLES / "vars"
ALL_TEMPLATES = {"worker", "retry", "report", "executor", "composite-load", "composite-chain"}
# Prompts an agent acts on: they must carry the stream-safety block.
STREAM_SAFE = ("worker", "executor", "composite-load", "composite-chain")


def first_line_using(template: Path, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in a template (read from the file)."""
    for number, line in enumerate(template.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {template}")


def pack_copy(tmp_path: Path) -> Path:
    """A copy of the pack's templates that a test may break; point DISPATCH_KIT_ROOT at it."""
    root = tmp_path / "pack"
    shutil.copytree(TEMPLATES, root / "templates")
    return root


def write_vars(tmp_path: Path, name: str, drop: str | None = None, **override: object) -> Path:
    """examples/vars/<name>.yaml with one key dropped or some replaced, as a new YAML file."""
    import yaml

    data = yaml.safe_load((VARS / f"{name}.yaml").read_text())
    if drop:
        del data[drop]
    data.update(override)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    """Every template rendered the way a user would, from the repository root (once per module)."""
    return render_all(run_cli)


def render_all(cli) -> dict[str, str]:
    out = {
        "worker": cli("render", "worker", "--plan", PLAN, "--task", "counter", cwd=ROOT),
        "retry": cli(
            "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
            "--check", CHECK, cwd=ROOT,
        ),
    }
    for name in ("report", "executor", "composite-load", "composite-chain"):
        out[name] = cli("render", name, "--vars", f"examples/vars/{name}.yaml", cwd=ROOT)
    for name, result in out.items():
        assert result.returncode == 0, (name, result.stderr)
    return {name: result.stdout for name, result in out.items()}


# --------------------------------------------------------------------------- bad input


def test_missing_variable_names_it_and_its_template_line(cli, tmp_path):
    path = write_vars(tmp_path, "composite-load", drop="push_command")
    result = cli("render", "composite-load", "--vars", str(path))
    assert result.returncode == 2
    line = first_line_using(TEMPLATES / "composite-load.md.j2", "push_command | code")
    assert result.stderr.startswith(f"{TEMPLATES / 'composite-load.md.j2'}:{line}: "), result.stderr
    assert "undefined variable 'push_command'" in result.stderr
    assert str(path) in result.stderr  # says where to set it
    assert result.stdout == ""


def test_missing_field_inside_a_list_item_is_reported(cli, tmp_path):
    import yaml

    tasks = yaml.safe_load((VARS / "report.yaml").read_text())["tasks"]
    del tasks[2]["title"]
    report = write_vars(tmp_path, "report", tasks=tasks)
    result = cli("render", "report", "--vars", str(report))
    assert result.returncode == 2
    assert "'title'" in result.stderr and "report.md.j2:" in result.stderr


def test_variable_of_the_wrong_type_is_bad_input_not_a_crash(cli, tmp_path):
    path = write_vars(tmp_path, "composite-chain", steps=5)
    result = cli("render", "composite-chain", "--vars", str(path))
    assert result.returncode == 2
    line = first_line_using(TEMPLATES / "composite-chain.md.j2", "for step in steps")
    assert f"composite-chain.md.j2:{line}: " in result.stderr
    assert "not iterable" in result.stderr


def test_syntax_error_in_a_template_points_at_its_line(cli, tmp_path):
    root = pack_copy(tmp_path)
    template = root / "templates" / "report.md.j2"
    lines = template.read_text().splitlines()
    lines.insert(25, "{% if %}")
    template.write_text("\n".join(lines) + "\n")
    result = cli(
        "render", "report", "--vars", str(VARS / "report.yaml"),
        env=cli_env(DISPATCH_KIT_ROOT=str(root)),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{template}:26: template syntax error"), result.stderr


def test_syntax_error_in_a_shared_clause_names_the_clause(cli, tmp_path):
    root = pack_copy(tmp_path)
    clause = root / "templates" / "clauses" / "stream-safety.md.j2"
    clause.write_text(clause.read_text().replace("{%- endmacro %}", "{% endmacr %}"))
    result = cli(
        "render", "executor", "--vars", str(VARS / "executor.yaml"),
        env=cli_env(DISPATCH_KIT_ROOT=str(root)),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{clause}:"), result.stderr
    assert "syntax error" in result.stderr


def test_unknown_template_lists_the_known_ones(cli):
    result = cli("render", "wroker", "--vars", str(VARS / "report.yaml"))
    assert result.returncode == 2
    assert "unknown template 'wroker'" in result.stderr
    for name in ALL_TEMPLATES:
        assert name in result.stderr


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [
        ("- goal\n- tasks\n", 1, "a list"),
        ("# variables for the report\n\n- goal\n", 3, "a list"),
        ("just a sentence\n", 1, "str"),
    ],
)
def test_vars_file_must_be_a_mapping(cli, tmp_path, text, line, found):
    path = tmp_path / "vars.yaml"
    path.write_text(text)
    result = cli("render", "report", "--vars", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:{line}:1: "), result.stderr
    assert "mapping" in result.stderr and found in result.stderr


def test_vars_file_that_is_not_yaml_gives_its_line(cli, tmp_path):
    path = tmp_path / "vars.yaml"
    path.write_text("goal: a\ntasks: [unclosed\n")
    result = cli("render", "report", "--vars", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:"), result.stderr
    assert "invalid YAML" in result.stderr


def test_json_vars_file_works(cli, tmp_path):
    import json

    import yaml

    data = yaml.safe_load((VARS / "report.yaml").read_text())
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(data))
    result = cli("render", "report", "--vars", str(path))
    assert result.returncode == 0, result.stderr
    assert data["goal"] in result.stdout


# --------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ goal.__class__.__base__.__subclasses__() }}",
    ],
)
def test_sandbox_blocks_access_to_python_internals(cli, tmp_path, payload):
    root = pack_copy(tmp_path)
    template = root / "templates" / "report.md.j2"
    template.write_text(template.read_text() + payload + "\n")
    result = cli(
        "render", "report", "--vars", str(VARS / "report.yaml"),
        env=cli_env(DISPATCH_KIT_ROOT=str(root)),
    )
    assert result.returncode == 2
    assert "sandbox" in result.stderr or "unsafe" in result.stderr, result.stderr
    assert "<class" not in result.stdout + result.stderr


def test_template_syntax_in_a_variable_is_printed_not_run(cli, tmp_path):
    path = write_vars(tmp_path, "report", goal="{{ 7 * 7 }} {% raw %}")
    result = cli("render", "report", "--vars", str(path))
    assert result.returncode == 0, result.stderr
    assert "Goal: {{ 7 * 7 }} {% raw %}" in result.stdout
    assert "49" not in result.stdout


# --------------------------------------------------------------------------- from a plan


def test_worker_prompt_from_the_example_plan(cli):
    result = cli("render", "worker", "--plan", PLAN, "--task", "counter", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("[Execute] Task `counter`: Write the word counter\n")
    # The criteria as commands the worker can paste, in plan order.
    commands = [
        "`test -f wordcount.py`",
        "`grep -qaF -- 'def count_words' wordcount.py`",
        "`python3 -m py_compile wordcount.py`",
        "`printf 'one two  three\\n' | python3 wordcount.py | grep -qx 3`",
    ]
    positions = [text.index(f"{n}. {c}") for n, c in enumerate(commands, 1)]
    assert positions == sorted(positions)
    assert "Working directory: `examples/wordcount/workspace/src`" in text
    # Relative to the task folder, where the worker runs it.
    assert "`dispatch-kit check ../../plan.yaml --task counter`" in text
    assert "Commits are not allowed" in text
    assert str(ROOT) not in text


def test_worker_prompt_names_the_folders_of_finished_dependencies(cli):
    result = cli("render", "worker", "--plan", PLAN, "--task", "review", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "- `tests`, Cover the counter with unit tests: files in `../tests`" in result.stdout
    assert "- `guide`, Write the usage guide: files in `../docs`" in result.stdout


def test_worker_prompt_outside_the_project_shows_the_full_directory(cli, tmp_path):
    result = cli(
        "render", "worker", "--plan", str(ROOT / PLAN), "--task", "guide", "-o",
        str(tmp_path / "p.md"), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = (tmp_path / "p.md").read_text()
    expected = ROOT / "examples" / "wordcount" / "workspace" / "docs"
    assert f"Working directory: `{expected}`" in text


def test_unknown_task_lists_the_plan_tasks(cli):
    result = cli("render", "worker", "--plan", PLAN, "--task", "deploy", cwd=ROOT)
    assert result.returncode == 2
    assert "no task 'deploy'" in result.stderr
    assert "counter, tests, guide, review" in result.stderr


def test_retry_addendum_carries_only_the_failed_criteria(cli):
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "2",
        "--check", CHECK, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("[Retry] Task `counter`")
    assert "Previous attempt failed (attempt 2/4)" in text
    assert "Fix this specific issue." in text
    assert "2 of 4 did not pass" in text
    # The fixture: criteria 3 and 4 failed with exit code 1 and a SyntaxError on stderr.
    assert "### Criterion 3: `python3 -m py_compile wordcount.py`" in text
    assert "### Criterion 4: " in text
    assert "Verdict: fail, exit code 1" in text
    assert text.count("```text\n  File \"wordcount.py\", line 6\n") == 2  # the stderr tails
    # The passing ones are not repeated as errors.
    assert "### Criterion 1" not in text and "### Criterion 2" not in text
    assert "last retry" not in text


def test_retry_after_a_timeout_asks_for_a_simpler_scope(cli):
    # The seed's failure table: a worker that timed out is retried with a simpler scope.
    args = ["render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
            "--check", CHECK]
    plain = cli(*args, cwd=ROOT)
    timed_out = cli(*args, "--timed-out", cwd=ROOT)
    assert plain.returncode == timed_out.returncode == 0, timed_out.stderr
    assert "narrow the scope" not in plain.stdout
    assert "stopped at its time limit (600 s)" in timed_out.stdout
    assert "narrow the scope this time" in timed_out.stdout
    # The failed criteria are still quoted after the outcome.
    assert "### Criterion 3: " in timed_out.stdout
    crashed = cli(*args, "--worker-outcome", "The previous worker was killed by signal 9.",
                  cwd=ROOT)
    assert "killed by signal 9" in crashed.stdout and "narrow the scope" not in crashed.stdout


def test_last_retry_says_so(cli):
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "3",
        "--check", CHECK, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "(attempt 3/4)" in result.stdout
    assert "This is the last retry" in result.stdout


def test_full_retry_is_the_worker_prompt_then_the_addendum(cli):
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
        "--check", CHECK, "--full", cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("[Execute] Task `counter`")
    assert text.index("## Exit criteria") < text.index("\n[Retry] Task `counter`")


@pytest.mark.parametrize("attempt", ["0", "4", "-1"])
def test_retry_attempt_must_be_within_max_retries(cli, attempt):
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", attempt,
        "--check", CHECK, cwd=ROOT,
    )
    assert result.returncode == 2
    assert f"--attempt {attempt} is out of range" in result.stderr
    assert "1 to 3" in result.stderr
    assert result.stderr.startswith(f"{PLAN}:")


def test_retry_needs_attempt_and_check(cli):
    result = cli("render", "retry", "--plan", PLAN, "--task", "counter", cwd=ROOT)
    assert result.returncode == 2
    assert "--attempt N and --check RESULT.json" in result.stderr


def test_retry_with_broken_check_json_gives_its_line(cli, tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"version": 1,\n "tasks": [\n  {"id": "counter",}\n ]}\n')
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
        "--check", str(path), cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:3:"), result.stderr
    assert "invalid JSON" in result.stderr


def test_retry_with_missing_check_file(cli, tmp_path):
    path = tmp_path / "nope.json"
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
        "--check", str(path), cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: no such file")


def test_retry_when_the_check_has_no_entry_for_the_task(cli):
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "guide", "--attempt", "1",
        "--check", CHECK, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{CHECK}:1: no result for task 'guide'")


def test_retry_of_a_task_that_passed_is_refused(cli, tmp_path):
    import json

    doc = json.loads((ROOT / CHECK).read_text())
    for criterion in doc["tasks"][0]["criteria"]:
        criterion.update(verdict="pass", exit_code=0, stderr_tail="", message="")
    path = tmp_path / "passed.json"
    path.write_text(json.dumps(doc))
    result = cli(
        "render", "retry", "--plan", PLAN, "--task", "counter", "--attempt", "1",
        "--check", str(path), cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: ")
    assert "nothing to retry" in result.stderr


def test_plan_flags_only_fit_worker_and_retry(cli):
    result = cli("render", "report", "--plan", PLAN, "--task", "counter", cwd=ROOT)
    assert result.returncode == 2
    assert "--vars FILE" in result.stderr


def test_the_check_fixture_follows_the_check_result_schema():
    """The hand-written fixture must stay what `dispatch-kit check --format json` produces."""
    import json

    schema_path = ROOT / "scripts" / "dispatch_kit" / "schemas" / "check-result.schema.json"
    if not schema_path.exists():
        pytest.skip("check-result schema not written yet")
    import jsonschema

    jsonschema.validate(json.loads((ROOT / CHECK).read_text()), json.loads(schema_path.read_text()))


# --------------------------------------------------------------------------- shared clauses


def stream_safety_rules(text: str) -> list[str] | None:
    """The three numbered rules under a ``Stream-safety:`` line, or None when absent."""
    lines = text.splitlines()
    if "Stream-safety:" not in lines:
        return None
    at = lines.index("Stream-safety:")
    rules = lines[at + 1 : at + 4]
    assert [rule[:3] for rule in rules] == ["1. ", "2. ", "3. "], rules
    return rules


def test_stream_safety_block_is_where_the_contract_puts_it(rendered):
    from dispatch_kit.render.templates import render_clause

    block = render_clause("stream-safety")
    for name in STREAM_SAFE:
        rules = stream_safety_rules(rendered[name])
        assert rules is not None, f"{name} has no stream-safety block"
        marker, budget, reads = rules
        assert "progress" in marker.lower() and "80 characters" in marker
        assert "one sentence" in marker and "before every tool call" in marker
        assert "60 seconds" in budget and "split" in budget.lower()
        assert "500 lines" in reads and "offset/limit" in reads
        assert block in rendered[name], f"{name} does not use the shared clause"
    assert "Stream-safety" not in rendered["report"]


def test_render_clause_is_the_block_and_ends_in_one_newline():
    from dispatch_kit.render.templates import render_clause

    block = render_clause("stream-safety")
    assert block.startswith("Stream-safety:\n1. ")
    assert block.endswith(".\n") and not block.endswith("\n\n")
    assert len(block.splitlines()) == 4


def test_render_clause_refuses_unknown_and_argument_taking_clauses():
    from dispatch_kit.errors import InputError
    from dispatch_kit.render.templates import render_clause

    known = "known clauses: dispatch-line, exit-criteria, stream-safety, worker-rules"
    with pytest.raises(InputError, match=known):
        render_clause("nope")
    with pytest.raises(InputError, match="takes arguments"):
        render_clause("worker-rules")


def test_worker_rules_appear_in_the_worker_prompt(rendered):
    text = rendered["worker"]
    rules = text.split("## Rules\n", 1)[1].split("\n\n", 1)[0]
    assert "servers" in rules and "finish on its own" in rules
    assert "only inside your working directory" in rules
    assert "run every exit criterion yourself" in rules
    assert "leave all your changes uncommitted" in rules and "list every file" in rules


def test_every_prompt_starts_with_its_kind_marker(rendered):
    first = {name: text.splitlines()[0] for name, text in rendered.items()}
    assert first["worker"].startswith("[Execute] ")
    load = "[Execute] Load docs/agents/payments-context.md. Then: "
    assert first["composite-load"].startswith(load)
    assert first["composite-chain"].startswith("[Execute] Chained on commit 4e1d2c9: ")
    assert first["executor"].startswith("[Executor] ")
    assert first["retry"].startswith("[Retry] ")
    assert first["report"] == "<!-- dispatch-kit: kind=none -->"


def render_vars(cli, name: str) -> str:
    result = cli("render", name, "--vars", str(VARS / f"{name}.yaml"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_executor_prompt_states_the_fire_and_forget_contract(cli):
    text = render_vars(cli, "executor")
    claim = text.index("`mv queue/ready/<item> queue/claimed/<item>`")
    spawn = text.index("Only after the claim succeeded")
    assert claim < spawn
    assert "print exactly `NO_REPLY` and stop" in text
    assert "At most 6" in text or "at most 6 items" in text
    assert "killed 5 min after it starts" in text
    assert "Dispatch and exit" in text
    # Workers outlive the run: started detached as `dispatch-kit run --detach` does, never as
    # the executor's background subagents (`claude -p` stops those when it ends).
    assert "`dispatch-kit run PLAN --detach --max-dispatch 6 --worker 'claude -p " in text
    assert "Never start it with the Agent tool" in text
    assert "background" not in text and "non-blocking" not in text


def test_composite_chain_verifies_the_commit_first(cli):
    text = render_vars(cli, "composite-chain")
    verify = text.index("git cat-file -e 4e1d2c9^{commit}")
    assert verify < text.index("## 2. Then do the work")


# --------------------------------------------------------------------------- the template files


def template_files() -> list[Path]:
    return sorted(TEMPLATES.glob("*.md.j2")) + sorted((TEMPLATES / "clauses").glob("*.md.j2"))


def test_the_pack_ships_exactly_the_contract_templates():
    assert {p.name[: -len(".md.j2")] for p in TEMPLATES.glob("*.md.j2")} == ALL_TEMPLATES


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.name)
def test_template_declares_its_kind_in_the_first_lines(path):
    head = path.read_text().splitlines()[:5]
    assert any(re.fullmatch(r"\{# dispatch-kit: kind=[a-z]+ #\}", line) for line in head), head


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.md.j2")), ids=lambda p: p.name)
def test_every_variable_a_template_uses_is_documented_at_its_top(path):
    from jinja2 import meta

    from dispatch_kit.render.templates import environment

    source = path.read_text()
    used = meta.find_undeclared_variables(environment().parse(source))
    comment = re.search(r"\{#(.*?)#\}", source.split("{# dispatch-kit:", 1)[1].split("#}", 1)[1],
                        re.S)
    assert comment, "no documentation comment after the kind marker"
    documented = set(re.findall(r"^\s+([a-z_]+)\s", comment.group(1), re.M))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    assert used, "a template with no variables"


# --------------------------------------------------------------------------- demo


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_demo_renders_the_prompts_into_its_folder_and_leaves_the_repo_alone(cli, tmp_path):
    out = tmp_path / "demo"
    # A previous demo run: the marker says the folder is the demo's to replace.
    (out / "prompts").mkdir(parents=True)
    (out / ".dispatch-kit-demo").write_text("")
    (out / "prompts" / "stale.md").write_text("left over")
    before = tree_state(EXAMPLES)
    result = cli("demo", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.output
    assert tree_state(EXAMPLES) == before
    text = result.stdout
    assert "== 1/" in text and "$ dispatch-kit manifests --check" in text
    assert "manifests: in sync with plugin.json" in text
    expected = {f"worker-{t}.md" for t in ("counter", "tests", "guide", "review")}
    expected |= {f"{n}.md" for n in ("executor", "composite-load", "composite-chain", "report")}
    assert {p.name for p in (out / "prompts").glob("*.md")} == expected
    for name in expected:
        size = (out / "prompts" / name).stat().st_size
        assert re.search(rf"^\s+{size} bytes\s+{re.escape(name)} ", text, re.M), name
    worker = (out / "prompts" / "worker-counter.md").read_text()
    assert worker.startswith("[Execute] Task `counter`")
    assert "../../plan.yaml" in worker  # the demo's own copy of the plan
    assert (out / "workspace" / "README.md").is_file()


def test_demo_refuses_a_folder_it_did_not_make(cli, tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    result = cli("demo", "--out", str(tmp_path), cwd=ROOT)
    assert result.returncode == 2
    assert "was not made by the demo" in result.stderr
    assert keep.read_text() == "mine"


@pytest.mark.parametrize(
    ("seconds", "prose", "compact"),
    [
        (0.034, "0.03 s", "0.03s"),
        (4.2, "4.2 s", "4.20s"),
        (42, "42 s", "42.0s"),
        (125, "2 min 5 s", "2m 05s"),
        (600, "10 min", "10m 00s"),
        (3780, "1 h 3 min", "1h 03m"),
        (7200, "2 h", "2h 00m"),
    ],
)
def test_durations_read_as_words_in_prompts_and_line_up_in_terminals(seconds, prose, compact):
    """Prompts and reports say "2 min 5 s" (an agent reads them); progress lines and
    ``ledger status`` say "2m 05s" (columns line up). Both come from dispatch_kit.durations."""
    from dispatch_kit.durations import format_duration, prose_duration
    from dispatch_kit.render.templates import environment

    assert prose_duration(seconds) == prose
    assert format_duration(seconds) == compact
    assert environment().filters["duration"] is prose_duration


def test_the_runners_fallback_addendum_numbers_attempts_as_the_ledger(monkeypatch, tmp_path):
    """When the retry template cannot render, the runner's plain addendum still says
    "attempt N/M" with M = 1 + max_retries, as the ledger and the template do."""
    import dispatch_kit.render.templates
    from dispatch_kit.errors import InputError
    from dispatch_kit.ledger.rows import TaskRow
    from dispatch_kit.plan.load import load_plan
    from dispatch_kit.runner.prompts import build_prompt

    def unrenderable(*args, **kwargs):
        raise InputError("the check entry is unreadable")

    monkeypatch.setattr(dispatch_kit.render.templates, "retry_vars", unrenderable)
    plan = load_plan(str(ROOT / PLAN))
    task = plan.task("tests")
    row = TaskRow(id="tests", seq=2, title=task.title, type=task.type, cwd=task.cwd,
                  timeout=600, max_retries=3, state="ready", attempt=2,
                  last_error="criterion 2 failed", last_check=None, skipped_because=None,
                  started_at=None, finished_at=None)
    text = build_prompt(plan, row, task, base=tmp_path)
    assert "## Previous attempt failed (attempt 1/4)\nError: criterion 2 failed" in text


# --- a variables file: every defect at file:line:col (issue 13) -----------------------------

RETRY_VARS = """task_id: a
task_title: t
task_dir: .
attempt: 1
max_retries: 2
criteria_total: 1
plan_path: null
worker_outcome: null
worker_timed_out: false
dispatch: {mission: m, task: a, attempt: 2, ledger: l.db}
failures:
  - number: 1
    criterion: "test -f done.txt"
    verdict: fail
    exit_code: 1
    duration: 0.1
    message: ""
    stdout_tail: ""
    stderr_tail: ""
"""


@pytest.mark.parametrize("name,text,expected", [
    ("vars.yaml", 'tasks: []\ngoal: "a\x01b"\n',
     ":2:9: invalid YAML: unacceptable character #x0001: special characters are not allowed"),
    ("vars.yaml", "tasks: []\ngoal: a\x07b\n",
     ":2:8: invalid YAML: unacceptable character #x0007: special characters are not allowed"),
    ("vars.json", '{"tasks": [],\n "goal": "a\x01b"}\n',
     ":2:12: invalid JSON: Invalid control character at"),
], ids=["quoted", "plain", "json"])
def test_a_control_character_in_a_vars_file_is_named_by_line_and_column(
        cli, tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    result = cli("render", "report", "--vars", str(path))
    assert result.returncode == 2
    assert result.stderr == f"{path}{expected}\n"


@pytest.mark.parametrize("old,new,expected", [
    ("verdict: fail", "verdict: maybe",
     ":14:5: failures[0].verdict is 'maybe'; expected one of fail, timeout, error"),
    ("verdict: fail", "verdict: pass",
     ":14:5: failures[0].verdict is 'pass'; expected one of fail, timeout, error"),
    ("verdict: fail", "verdict: [fail]",
     ":14:5: failures[0].verdict is ['fail']; expected one of fail, timeout, error"),
    ("failures:\n  - number: 1", "failures:\n  - 7\n  - number: 1",
     ":12:5: failures[0] must be a mapping (number, criterion, verdict, ...)"),
], ids=["unknown", "pass", "list", "not-a-mapping"])
def test_a_retry_vars_file_with_a_bad_verdict_is_refused_where_it_is_written(
        cli, tmp_path, old, new, expected):
    path = tmp_path / "retry.yaml"
    path.write_text(RETRY_VARS.replace(old, new))
    result = cli("render", "retry", "--vars", str(path))
    assert (result.returncode, result.stderr) == (2, f"{path}{expected}\n")


def test_a_good_retry_vars_file_renders(cli, tmp_path):
    path = tmp_path / "retry.yaml"
    path.write_text(RETRY_VARS)
    result = cli("render", "retry", "--vars", str(path))
    assert result.returncode == 0, result.stderr
    assert "Verdict: fail, exit code 1" in result.stdout


def test_an_integer_past_the_digit_limit_in_a_vars_file_is_named_at_its_place(cli, tmp_path):
    """Found by tests/test_fuzz_cli.py: ruamel's int() failed with no position."""
    path = tmp_path / "vars.yaml"
    path.write_text("tasks: []\ngoal: " + "9" * 5000 + "\n")
    result = cli("render", "report", "--vars", str(path))
    assert (result.returncode, result.stderr) == (
        2, f"{path}:2:7: invalid YAML: an integer with more than 4300 digits\n")
