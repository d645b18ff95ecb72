"""Issue 13, bad input: the check result document held to its schema before anything trusts
it (``ledger record``, ``render retry``), and ``--pid``/``--lease`` bounded in the ledger CLI.

Each case must end in one line ``file:line:col: message`` (or ``--flag: message``)
and exit 2, and never change the ledger.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_runner import db_states, small_plan

LOCATED = re.compile(r"^[^:\n]+\.json:\d+:\d+: not a check result: .+\n$")


def checked(tmp_path: Path, cli) -> tuple[Path, dict]:
    plan = small_plan(tmp_path, [{"id": "a", "criteria": ["false"]}, {"id": "b"}])
    (tmp_path / "ws" / "a").mkdir(parents=True)
    result = cli("check", str(plan), "--task", "a", "--format", "json")
    assert result.returncode == 1, result.stderr
    return plan, json.loads(result.stdout)


def write(tmp_path: Path, doc: dict | str) -> Path:
    path = tmp_path / "result.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def one_located_line(result) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert LOCATED.match(result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_ledger_record_refuses_the_string_false_as_passed(tmp_path, cli):
    plan, doc = checked(tmp_path, cli)
    doc["passed"] = "false"
    doc["tasks"][0]["passed"] = "false"
    db = tmp_path / "ws" / ".dispatch" / "ledger.db"
    assert cli("ledger", "init", str(plan)).returncode == 0
    assert cli("ledger", "claim", "a", "--plan", str(plan), "--by", "me").returncode == 0
    result = cli("ledger", "record", "a", "--plan", str(plan), "--check",
                 str(write(tmp_path, doc)))
    one_located_line(result)
    assert db_states(db)["a"] != "verified"


@pytest.mark.parametrize("criteria", ["x", [1], [{"index": "0"}], None])
def test_ledger_record_refuses_malformed_criteria(tmp_path, cli, criteria):
    plan, doc = checked(tmp_path, cli)
    doc["tasks"][0]["criteria"] = criteria
    assert cli("ledger", "init", str(plan)).returncode == 0
    result = cli("ledger", "record", "a", "--plan", str(plan), "--check",
                 str(write(tmp_path, doc)))
    one_located_line(result)


@pytest.mark.parametrize("field,value", [("index", -7), ("duration", "1e400"),
                                         ("duration", "Infinity"), ("verdict", "maybe")])
def test_render_retry_refuses_values_no_check_prints(tmp_path, cli, field, value):
    plan, doc = checked(tmp_path, cli)
    doc["tasks"][0]["criteria"][0][field] = "@@"
    text = json.dumps(doc, indent=2).replace('"@@"', str(value) if field != "verdict"
                                             else json.dumps(value))
    result = cli("render", "retry", "--plan", str(plan), "--task", "a", "--attempt", "1",
                 "--check", str(write(tmp_path, text)))
    one_located_line(result)
    line = int(result.stderr.split(":")[1])
    assert f'"{field}"' in text.splitlines()[line - 1]  # the line of the bad value


@pytest.mark.parametrize("flag,value", [("--pid", "99999999999999999999"), ("--pid", "-5"),
                                        ("--lease", "99999999999999999999d"),
                                        ("--lease", "9999999999999h")])
def test_ledger_pid_and_lease_out_of_range(tmp_path, cli, flag, value):
    plan = small_plan(tmp_path, [{"id": "a"}, {"id": "b"}])
    assert cli("ledger", "init", str(plan)).returncode == 0
    for command in (["claim", "a"], ["dispatch", "a"]):
        result = cli("ledger", *command, "--plan", str(plan), "--by", "me", flag, value)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"{flag}: bad value") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("opener", ["{", "["])
def test_deep_flow_nesting_is_refused_at_once_with_its_place(tmp_path, cli, opener):
    """The YAML parser's time grows with the square of the nesting: 5,000 open brackets
    took ~10 s. Deeper than any plan needs is refused before it is parsed."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("goal: deep\nlist: " + opener * 5000 + "\n")
    result = cli("plan", "validate", str(plan), timeout=120)  # a guard: the message is the test
    assert result.returncode == 2
    assert result.stderr == f"{plan}:2:207: nesting deeper than 200 levels\n"


def test_brackets_inside_quotes_and_comments_do_not_count(tmp_path, cli):
    plan = tmp_path / "plan.yaml"
    plan.write_text("# " + "[" * 300 + "\ngoal: '" + "{" * 300 + "'\n")
    result = cli("plan", "validate", str(plan))
    assert "nesting" not in result.stderr
    assert "missing required field 'tasks'" in result.stderr


def test_an_integer_past_the_digit_limit_in_a_check_result_is_named_by_its_place(tmp_path, cli):
    plan, doc = checked(tmp_path, cli)
    text = json.dumps(doc, indent=2).replace('"version": 1', '"version": 1' + "0" * 5000, 1)
    result = cli("ledger", "record", "a", "--db", str(tmp_path / "l.db"),
                 "--check", str(write(tmp_path, text)))
    assert result.returncode == 2
    assert result.stderr == (f"{tmp_path / 'result.json'}:2:14: invalid JSON: an integer with "
                             "more than 4300 digits\n")


def test_one_reader_per_format_gives_positions():
    """JSON errors are placed by json_positions alone, undecodable bytes by yamlfile alone:
    a second copy drifts (the manifests' copy gave a duplicate key no position at all)."""
    package = Path(__file__).resolve().parents[1] / "scripts" / "dispatch_kit"
    owners = {".lineno, exc.colno": "json_positions.py", "rfind(b\"\\n\"": "yamlfile.py",
              "JSONDecodeError as": "json_positions.py"}
    for source in sorted(package.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        for needle, owner in owners.items():
            assert needle not in text or source.name == owner, (
                f"{source.relative_to(package)} computes a position itself ({needle!r}); "
                f"use {owner}")
