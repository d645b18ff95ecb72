"""`dispatch-kit plan validate|schema`: a plan with any defect is rejected at the right place.

Every bad plan must produce one `file:line:col: message` line per problem on
stderr and exit 2; the expected positions below were read off the fixture
files, not copied from the validator's output.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plans"
SCHEMA = ROOT / "scripts" / "dispatch_kit" / "schemas" / "plan.schema.json"
ERROR_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def errors_of(result) -> list[tuple[int, int, str]]:
    """(line, column, message) of every stderr line; each must have the file:line:col shape."""
    found = []
    for line in result.stderr.splitlines():
        match = ERROR_LINE.match(line)
        assert match, f"not a file:line:col line: {line!r}"
        found.append((int(match["line"]), int(match["col"]), match["message"]))
    return found


def rejected(cli, path: Path | str, *args: str) -> list[tuple[int, int, str]]:
    result = cli("plan", "validate", str(path), *args)
    assert result.returncode == 2, result.output
    assert result.stdout == ""
    assert all(line.startswith(f"{path}:") for line in result.stderr.splitlines())
    return errors_of(result)


def write_plan(tmp_path: Path, body: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


TWO_TASKS = """\
goal: Two small tasks
tasks:
  - {id: a, title: A, type: coding, cwd: a, exit_criteria: [test -f x]}
  - {id: b, title: B, type: coding, cwd: b, exit_criteria: [test -f y]}
"""


# --- good plans ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good-healthz.yaml", "good.json", "good-tab-led.json"])
def test_good_plans_print_one_ok_line(cli, name):
    result = cli("plan", "validate", str(FIXTURES / name))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and ": OK: " in lines[0]


def test_ok_line_counts_tasks_and_criteria_and_gives_dependency_order(cli):
    result = cli("plan", "validate", str(FIXTURES / "good-healthz.yaml"))
    assert "3 tasks, 11 exit criteria" in result.stdout
    assert "dependency order: handler -> docs -> review" in result.stdout


def test_bundled_example_plan_validates(cli):
    result = cli("plan", "validate", str(EXAMPLES / "wordcount" / "plan.yaml"))
    assert result.returncode == 0, result.stderr
    assert "4 tasks" in result.stdout


def test_plan_read_from_stdin(cli):
    result = cli("plan", "validate", "-", input=(FIXTURES / "good.json").read_text())
    assert result.returncode == 0, result.stderr


def test_issue_example_needs_only_its_description_quoted(cli, tmp_path):
    """The issue's sample plan, verbatim except the description that holds `": "`."""
    body = (FIXTURES / "good-healthz.yaml").read_text()
    plain = body.replace("'GET /healthz returns {\"status\": \"ok\"} with HTTP 200.'",
                         "GET /healthz returns {\"status\": \"ok\"} with HTTP 200.")
    assert plain != body
    (line, col, message), = rejected(cli, write_plan(tmp_path, plain))
    assert line == 10
    assert "must be quoted" in message


# --- YAML and file defects ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "col", "fragment"),
    [
        ("bad-dup-key.yaml", 7, 5, 'duplicate key "cwd"'),
        ("bad-tab.yaml", 4, 1, "tab character"),
        ("bad-bomb.yaml", 1, 1, "expands to more than"),
        ("bad-not-mapping.yaml", 1, 1, "must be a mapping"),
        ("bad-empty.yaml", 1, 1, "empty file"),
        ("bad-python-tag.yaml", 2, 1, "python/object/apply"),
        ("bad-multi-doc.yaml", 1, 1, "one YAML document, found 2"),
        ("bad-dup-key.json", 3, 3, "duplicate key 'goal'"),
        ("bad-syntax.json", 4, 16, "invalid JSON"),
    ],
)
def test_malformed_files_are_one_clean_error(cli, name, line, col, fragment):
    (got_line, got_col, message), = rejected(cli, FIXTURES / name)
    assert (got_line, got_col) == (line, col)
    assert fragment in message


def test_python_tag_is_never_constructed(cli, tmp_path):
    marker = tmp_path / "pwned"
    path = write_plan(tmp_path, f"goal: !!python/object/apply:os.system ['touch {marker}']\n"
                                "tasks: []\n")
    (_, _, message), = rejected(cli, path)
    assert "unsupported YAML" in message
    assert not marker.exists()


def test_python_object_tag_is_rejected(cli, tmp_path):
    path = write_plan(tmp_path, "goal: x\ntasks: !!python/object:collections.OrderedDict {}\n")
    (line, _, message), = rejected(cli, path)
    assert line == 2 and "python/object" in message


def test_non_utf8_bytes_name_their_position(cli, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"goal: ok\ntasks:\n  - id: caf\xe9\n")
    (line, col, message), = rejected(cli, path)
    assert (line, col) == (3, 12)  # the byte after "  - id: caf"
    assert "UTF-8" in message and "0xe9" in message


def test_missing_file_exits_2(cli, tmp_path):
    result = cli("plan", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_tab_indented_json_that_yaml_rejects_keeps_positions(cli):
    # A tab before the first '{' makes ruamel give up; the JSON fallback must still
    # point schema errors at the right line and column.
    (line, col, message), = rejected(cli, FIXTURES / "bad-type-tab-led.json")
    assert (line, col) == (5, 34)
    assert "tasks[1].type" in message and "'codeing'" in message


# --- schema defects -----------------------------------------------------------------------


def test_wrong_types_and_unknown_fields_all_reported_in_file_order(cli):
    errors = rejected(cli, FIXTURES / "bad-fields.yaml")
    positions = [(line, col) for line, col, _ in errors]
    assert positions == sorted(positions)
    text = "\n".join(f"{line}:{col}: {m}" for line, col, m in errors)
    assert "2:12: defaults.timeout: must be a number" in text
    assert "2:26: defaults.max_retries: must be at least 0" in text
    assert "6:5: tasks[0].type: must be one of coding, research, review" in text
    assert "8:5: tasks[0]: unknown field 'depend_on' (did you mean 'depends_on'?)" in text
    assert "15:9: tasks[1].exit_criteria[0].run: must be a list" in text
    assert "16:9:" in text and "'npx tsc' holds several words" in text
    assert "17:9: tasks[1].exit_criteria[2]: a structured criterion needs exactly one of" in text
    assert "19:9: tasks[1].exit_criteria[3]: a criterion is a shell command" in text
    assert len(errors) == 8


def test_missing_required_fields(cli, tmp_path):
    path = write_plan(tmp_path, "tasks:\n  - {id: a, type: coding, cwd: a, exit_criteria: [true]}\n"
                                "  - {id: b, title: B, type: coding, exit_criteria: [true]}\n")
    messages = {(line, m) for line, _, m in rejected(cli, path)}
    assert (1, "plan: missing required field 'goal'") in messages
    assert (2, "tasks[0]: missing required field 'title'") in messages
    assert (3, "tasks[1]: missing required field 'cwd'") in messages


def test_a_bad_task_id_is_rejected(cli, tmp_path):
    path = write_plan(tmp_path, TWO_TASKS.replace("id: b,", "id: 'b c',"))
    (line, _, message), = rejected(cli, path)
    assert line == 4 and "invalid value 'b c'" in message


def test_shell_command_split_at_colon_space_says_to_quote_it(cli):
    (line, col, message), = rejected(cli, FIXTURES / "bad-colon-command.yaml")
    assert (line, col) == (9, 9)
    assert "quote the whole command" in message
    assert "\"grep -qx 'VERDICT: PASS' verdict.md\"" in message


# --- checks beyond the schema -------------------------------------------------------------


def test_too_few_tasks(cli):
    (line, _, message), = rejected(cli, FIXTURES / "bad-one-task.yaml")
    assert line == 2 and "at least 2 tasks, found 1" in message


def test_too_many_tasks_and_the_flag_that_raises_the_cap(cli):
    path = FIXTURES / "bad-seven-tasks.yaml"
    (line, _, message), = rejected(cli, path)
    assert line == 2 and "7 tasks; at most 6" in message and "--max-tasks" in message
    assert cli("plan", "validate", str(path), "--max-tasks", "7").returncode == 0


def test_max_tasks_below_two_is_a_usage_error(cli):
    result = cli("plan", "validate", str(FIXTURES / "good.json"), "--max-tasks", "1")
    assert result.returncode == 2
    assert "at least 2" in result.stderr


@pytest.mark.parametrize(
    ("fixture", "where", "expected"),
    [
        pytest.param(
            "bad-dup-id.yaml", (4, 6), "duplicate task id 'build' (first used at line 3)",
            id="duplicate-ids",
        ),
        pytest.param(
            "bad-unknown-dep.yaml", (8, 18), "unknown task 'handlr' (did you mean 'handler'?)",
            id="unknown-dependency-suggests-the-near-miss",
        ),
        pytest.param(
            "bad-self-dep.yaml", (8, 21), "task 'b' depends on itself", id="self-dependency"
        ),
        # a waits for c, c for b, b for a: printed once, at a's `depends_on: [c]` entry.
        pytest.param(
            "bad-cycle.yaml", (7, 18), "dependency cycle: a -> c -> b -> a",
            id="cycle-is-printed-once-from-its-first-task",
        ),
    ],
)
def test_id_and_dependency_problems_point_at_their_entry(cli, fixture, where, expected):
    (line, col, message), = rejected(cli, FIXTURES / fixture)
    assert (line, col) == where
    assert expected in message


def test_two_task_cycle(cli, tmp_path):
    body = TWO_TASKS.replace("cwd: a,", "cwd: a, depends_on: [b],").replace(
        "cwd: b,", "cwd: b, depends_on: [a],")
    (line, _, message), = rejected(cli, write_plan(tmp_path, body))
    assert line == 3 and "dependency cycle: a -> b -> a" in message


def test_tasks_without_criteria(cli):
    errors = rejected(cli, FIXTURES / "bad-no-criteria.yaml")
    assert [(line, m) for line, _, m in errors] == [
        (7, "tasks[0].exit_criteria: a task needs at least one exit criterion, found none"),
        (8, "tasks[1]: missing required field 'exit_criteria'"),
    ]


def test_vague_criteria_are_rejected_each_at_its_line(cli):
    errors = rejected(cli, FIXTURES / "bad-vague.yaml")
    assert [line for line, _, _ in errors] == [8, 9, 16, 17]  # `test -f main.py` (10) is fine
    assert all("vague exit criterion" in m for _, _, m in errors)
    assert "'the code works'" in errors[0][2]
    assert "'tests pass'" in errors[1][2]


@pytest.mark.parametrize(
    "command",
    [
        "test -f x",
        "npx tsc --noEmit",
        'grep -q "kw" f',
        "wc -c < f | awk '$1 > 100'",
        "PYTHONPATH=../src python3 -m unittest -q t",
        "printf 'a\\n' | python3 x.py | grep -qx 1",
        "make test",
        "pytest",
        "[ -s out.txt ]",
        "! grep -q TODO main.py",
        "./scripts/verify.sh",
        "echo 'the end'",
        "echo a",
        "make all",
        "run_tests",
        "check_links docs",
    ],
)
def test_real_commands_are_not_vague(cli, tmp_path, command):
    body = TWO_TASKS.replace("exit_criteria: [test -f y]", "exit_criteria: [CMD]").replace(
        "CMD", json.dumps(command))
    result = cli("plan", "validate", str(write_plan(tmp_path, body)))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "prose",
    [
        "the code works",
        "tests pass",
        "make sure the docs are good",
        "Everything compiles",
        "check that the output is right",
        "test that it works",
        "docs updated.",
        "'all tests green'",
        "# TODO",
        "Documentation for from_csv is clear and complete.",
        "count_words is correct",
    ],
)
def test_prose_is_vague(cli, tmp_path, prose):
    body = TWO_TASKS.replace("exit_criteria: [test -f y]", "exit_criteria: [CMD]").replace(
        "CMD", json.dumps(prose))
    (line, _, message), = rejected(cli, write_plan(tmp_path, body))
    assert line == 4 and "vague exit criterion" in message


def test_cwd_escaping_with_dotdot_or_absolute(cli):
    errors = rejected(cli, FIXTURES / "bad-cwd-dotdot.yaml")
    assert [(line, col) for line, col, _ in errors] == [(4, 37), (5, 37)]
    assert "cwd 'sub/../..' is outside the workspace" in errors[0][2]
    assert "cwd '/etc' must be relative to the workspace" in errors[1][2]


def test_cwd_escaping_through_a_symlink(cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace = tmp_path / "project" / "ws"
    (workspace / "inside").mkdir(parents=True)
    (workspace / "escape").symlink_to(outside)
    (workspace / "alias").symlink_to(workspace / "inside")
    body = TWO_TASKS.replace("goal:", "workspace: ws\ngoal:").replace(
        "cwd: a,", "cwd: escape/sub,").replace("cwd: b,", "cwd: alias,")
    path = write_plan(tmp_path / "project", body)
    (line, _, message), = rejected(cli, path)
    assert line == 4  # only the escaping task; a symlink that stays inside is fine
    assert "cwd 'escape/sub' leaves the workspace through a symlink" in message
    assert f"resolves to {outside / 'sub'}" in message


def test_contains_needs_exactly_one_of_text_and_regex_and_a_valid_regex(cli):
    errors = rejected(cli, FIXTURES / "bad-contains.yaml")
    assert [(line, col) for line, col, _ in errors] == [(8, 9), (9, 9), (15, 32)]
    assert "exactly one of text or regex" in errors[0][2]
    assert "exactly one of text or regex" in errors[1][2]
    assert "invalid regex '(unclosed'" in errors[2][2]


def test_every_problem_is_reported_not_only_the_first(cli, tmp_path):
    body = """\
goal: Many problems at once
tasks:
  - {id: a, title: A, type: coding, cwd: ../out, depends_on: [zz], exit_criteria: [tests pass]}
  - {id: a, title: B, type: codin, cwd: b, exit_criteria: []}
"""
    errors = rejected(cli, write_plan(tmp_path, body))
    messages = " | ".join(m for _, _, m in errors)
    for fragment in ("unknown task 'zz'", "outside the workspace", "vague exit criterion",
                     "duplicate task id 'a'", "must be one of coding", "at least one exit"):
        assert fragment in messages
    assert len(errors) == 6


# --- plan schema --------------------------------------------------------------------------


def test_schema_command_prints_the_shipped_schema(cli):
    result = cli("plan", "schema")
    assert result.returncode == 0
    assert result.stdout == SCHEMA.read_text(encoding="utf-8")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("/2020-12/schema")


def test_schema_accepts_the_good_fixtures_and_rejects_shape_errors():
    from ruamel.yaml import YAML

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    good = YAML(typ="safe").load(FIXTURES / "good-healthz.yaml")
    assert list(validator.iter_errors(good)) == []
    bad = YAML(typ="safe").load(FIXTURES / "bad-contains.yaml")
    assert list(validator.iter_errors(bad))


def test_plan_without_action_is_a_usage_error(cli):
    assert cli("plan").returncode == 2


def test_load_plan_builds_the_model(tmp_path):
    """The library API other commands build on: defaults inherited, positions kept."""
    from dispatch_kit.plan.load import load_plan, validate_plan

    shutil.copy(FIXTURES / "good-healthz.yaml", tmp_path / "p.yaml")
    plan = load_plan(str(tmp_path / "p.yaml"))
    assert plan.workspace == tmp_path.resolve()
    handler, docs, review = plan.tasks
    assert handler.timeout == 600 and review.timeout == 300 and review.max_retries == 1
    assert review.extra == {"x-owner-note": "carried through untouched"}
    assert plan.extra == {"x-tracker": "extension fields starting with x- are allowed"}
    assert [c.kind for c in handler.exit_criteria] == [
        "shell", "file_exists", "contains", "min_bytes", "run"]
    assert handler.exit_criteria[4].argv == ("npx", "tsc", "--noEmit")
    assert handler.exit_criteria[4].timeout == 120
    assert [c.line for c in handler.exit_criteria] == [12, 13, 14, 15, 16]
    assert docs.depends_on == ("handler",)
    assert plan.task_dir(review) == tmp_path.resolve() / "review"

    plan, errors = validate_plan(str(FIXTURES / "bad-cycle.yaml"))
    assert plan is None and len(errors) == 1 and errors[0].line == 7


def test_dependency_order_follows_dependencies_and_keeps_plan_order_for_ties(cli, tmp_path):
    # Listed backwards: the summary must still put each task after what it needs,
    # and tasks ready at the same time in the order the plan lists them.
    body = """\
goal: Order
tasks:
  - {id: report, title: R, type: review, cwd: r, depends_on: [docs, code],
     exit_criteria: [test -f r]}
  - {id: docs, title: D, type: research, cwd: d, depends_on: [base], exit_criteria: [test -f d]}
  - {id: code, title: C, type: coding, cwd: c, depends_on: [base], exit_criteria: [test -f c]}
  - {id: base, title: B, type: coding, cwd: b, exit_criteria: [test -f b]}
"""
    result = cli("plan", "validate", str(write_plan(tmp_path, body)))
    assert result.returncode == 0, result.stderr
    assert "dependency order: base -> docs -> code -> report" in result.stdout
