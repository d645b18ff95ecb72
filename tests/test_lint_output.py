"""The four report formats a user (or a CI system) reads: text, JSON, SARIF 2.1.0, GitHub."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "lint"
BROKEN = FIXTURES / "broken" / "worker.md"
SARIF_SCHEMA = FIXTURES / "sarif" / "sarif-schema-2.1.0.json"
TEXT_LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>DK\d{3}) (?P<msg>.+)$"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one broken prompt and one clean prompt, in a sub-folder."""
    (tmp_path / "prompts").mkdir()
    shutil.copy(BROKEN, tmp_path / "prompts" / "broken.md")
    shutil.copy(FIXTURES / "clean" / "prompts" / "executor.md", tmp_path / "prompts" / "ok.md")
    return tmp_path


def test_text_format_is_path_line_col_code_message(cli, project):
    result = cli("lint", "prompts", cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines, result.output
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {m["path"] for m in parsed} == {"prompts/broken.md"}
    assert ("1", "1", "DK101") in {(m["line"], m["col"], m["code"]) for m in parsed}
    # the model name is on line 3, after "Use "
    assert ("3", "5", "DK603") in {(m["line"], m["col"], m["code"]) for m in parsed}
    assert "6 findings (3 errors, 3 warnings) in 1 file" in result.stderr


def test_clean_run_prints_nothing_on_stdout_and_exits_0(cli, project):
    result = cli("lint", "prompts/ok.md", cwd=project)
    assert (result.returncode, result.stdout) == (0, "")
    assert "all checks passed" in result.stderr


def test_exit_zero_keeps_the_report(cli, project):
    result = cli("lint", "prompts", "--exit-zero", cwd=project)
    assert result.returncode == 0
    assert "DK101" in result.stdout


def test_json_format_fields(cli, project):
    result = cli("lint", "prompts", "--format", "json", cwd=project)
    assert result.returncode == 1
    findings = json.loads(result.stdout)
    assert findings and isinstance(findings, list)
    for finding in findings:
        assert set(finding) == {"path", "line", "column", "code", "name", "severity", "message"}
        assert finding["severity"] in ("error", "warning")
        assert isinstance(finding["line"], int) and isinstance(finding["column"], int)
    first = findings[0]
    assert (first["path"], first["code"], first["name"]) == (
        "prompts/broken.md",
        "DK101",
        "missing-stream-safety",
    )
    assert result.stderr == ""  # machine formats keep stderr for errors only


def test_json_report_is_what_json_dumps_writes(cli, project, tmp_path):
    """The report is laid out by hand for speed; it must stay byte-for-byte what
    ``json.dumps(..., indent=2, ensure_ascii=False)`` writes, odd characters included."""
    from dispatch_kit.lint.finding import Finding
    from dispatch_kit.lint.output import render

    odd = Finding(
        'dir/\u00e9 "quoted" \\ name.md', 12, 3, "DK101", "missing-stream-safety", "error",
        "tab\there, control \x01, line sep \u2028, emoji \U0001F600, quote \" and backslash \\",
    )
    plain = Finding("p.md", 1, 1, "DK603", "start-server", "warning", "do not start servers")
    for findings in ([], [plain], [odd, plain]):
        expected = json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False)
        assert render(findings, "json") == expected + "\n"
    result = cli("lint", "prompts", "--format", "json", cwd=project)
    findings = [Finding(**item) for item in json.loads(result.stdout)]
    assert result.stdout == json.dumps(
        [f.to_dict() for f in findings], indent=2, ensure_ascii=False
    ) + "\n"


def test_json_of_a_clean_run_is_an_empty_array(cli, project):
    result = cli("lint", "prompts/ok.md", "--format", "json", cwd=project)
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_github_annotations(cli, project):
    result = cli("lint", "prompts", "--format", "github", cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # the message is data: only %, CR and LF are escaped there, so its colon stays
    assert lines[0].startswith(
        "::error file=prompts/broken.md,line=1,col=1,title=DK101::add the Stream-safety: block"
    )
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert any("title=DK603::" in line for line in warnings)


def test_github_escapes_property_values(cli, tmp_path):
    odd = tmp_path / "a,b:c.md"
    odd.write_text("[Execute] Do it.\n", encoding="utf-8")
    result = cli("lint", odd.name, "--format", "github", cwd=tmp_path)
    assert "file=a%2Cb%3Ac.md,line=1,col=1,title=DK101::" in result.stdout


def test_sarif_is_valid_against_the_official_schema(cli, project):
    jsonschema = pytest.importorskip("jsonschema")
    result = cli("lint", "prompts", "--format", "sarif", cwd=project)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules][:2] == ["DK101", "DK102"]
    for res in run["results"]:
        location = res["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {
            "uri": "prompts/broken.md",
            "uriBaseId": "%SRCROOT%",
        }
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning")
        assert location["region"]["startLine"] >= 1
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["DK603"]["level"] == "warning"
    assert by_rule["DK101"]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 1,
        "startColumn": 1,
    }


def test_sarif_uris_are_relative_even_for_absolute_paths(cli, project):
    result = cli("lint", str(project / "prompts" / "broken.md"), "--format", "sarif", cwd=project)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(result.stdout)["runs"][0]["results"]
    }
    assert uris == {"prompts/broken.md"}
    assert str(project) not in result.stdout


def test_sarif_of_a_clean_run_is_still_a_valid_log(cli, project):
    jsonschema = pytest.importorskip("jsonschema")
    result = cli("lint", "prompts/ok.md", "--format", "sarif", cwd=project)
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(log)
    assert log["runs"][0]["results"] == []


def test_output_file(cli, project):
    result = cli("lint", "prompts", "--format", "sarif", "-o", "out/report.sarif", cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads((project / "out" / "report.sarif").read_text())["version"] == "2.1.0"
