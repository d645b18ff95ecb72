"""The rule catalogue: every documented example is linted, and the docs match the registry.

A rule's bad example must trigger it and its good example must lint clean:
the documentation cannot promise what the rule does not do. All examples are
written into one folder tree and linted in a single CLI run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT

from dispatch_kit.lint.registry import all_rules

RULES = all_rules()


def _write_example(base: Path, example) -> Path:
    for rel, text in example.files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    path = base / example.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def example_findings(tmp_path_factory):
    """(code, bad|good) -> findings of that example, from one `dispatch-kit lint` run."""
    from conftest import run_cli

    base = tmp_path_factory.mktemp("examples")
    targets: dict[str, tuple[str, str]] = {}
    for rule in RULES:
        for which in ("bad", "good"):
            path = _write_example(base / rule.code / which, getattr(rule, which))
            targets[path.relative_to(base).as_posix()] = (rule.code, which)
    result = run_cli("lint", "--format", "json", *targets, cwd=base)
    assert result.returncode == 1, result.output  # the bad examples have findings
    found: dict[tuple[str, str], list[dict]] = {key: [] for key in targets.values()}
    for finding in json.loads(result.stdout):
        found[targets[finding["path"]]].append(finding)
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_bad_example_triggers_its_rule(rule, example_findings):
    codes = [f["code"] for f in example_findings[(rule.code, "bad")]]
    assert rule.code in codes, f"{rule.code} bad example gave {codes}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_good_example_lints_clean(rule, example_findings):
    assert example_findings[(rule.code, "good")] == []


def test_catalogue_follows_conventions():
    codes = [r.code for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert re.fullmatch(r"DK[1-9]\d\d", rule.code), rule.code
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", rule.name), rule.name
        assert rule.problems() == [], (rule.code, rule.problems())
        assert rule.rationale.strip() and rule.applies_to.strip()
        assert rule.bad != rule.good  # text or context files differ


def test_issue_families_are_covered():
    """At least the rule families the issue asks for exist, with their stable prefixes."""
    families = {r.code[:3] for r in RULES}
    assert families >= {"DK1", "DK2", "DK3", "DK4", "DK5", "DK6", "DK7", "DK8", "DK9"}


def test_rule_command_prints_documentation(cli):
    result = cli("rule", "DK101")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("DK101 missing-stream-safety (error; fixable with --fix)")
    assert "Why:" in out and "Bad (prompt.md):" in out and "Good (prompt.md):" in out
    rule = next(r for r in RULES if r.code == "DK101")
    for line in rule.good.text.splitlines():  # the example is shown as written
        assert f"    {line}".rstrip() in out.splitlines()


def test_rule_command_accepts_names_and_any_case(cli):
    by_name = cli("rule", "missing-stream-safety")
    by_code = cli("rule", "dk101")
    assert by_name.returncode == by_code.returncode == 0
    assert by_name.stdout == by_code.stdout


def test_rule_command_shows_the_context_files_of_an_example(cli):
    out = cli("rule", "DK401").stdout
    assert "with agents/domain-editor.md:" in out
    assert "tools: Read, Edit, Glob, Grep" in out


def test_rule_list_names_every_rule(cli):
    result = cli("rule", "--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [r.code for r in RULES]
    assert lines[0].split()[1:3] == ["missing-stream-safety", "error"]


def test_rule_json(cli):
    data = json.loads(cli("rule", "DK603", "--format", "json").stdout)
    assert data["code"] == "DK603" and data["severity"] == "warning"
    assert data["bad"]["path"] == "prompt.md"


def test_unknown_rule_is_bad_usage(cli):
    result = cli("rule", "DK999")
    assert result.returncode == 2
    assert "unknown rule 'DK999'" in result.stderr


def test_docs_rules_md_is_generated_from_the_registry(cli):
    """docs/rules.md is `dispatch-kit rule --all --format markdown`, byte for byte."""
    generated = cli("rule", "--all", "--format", "markdown").stdout
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == generated, (
        "docs/rules.md is stale: run `dispatch-kit rule --all --format markdown > docs/rules.md`"
    )
    for rule in RULES:
        assert f"### {rule.code} {rule.name}" in committed
