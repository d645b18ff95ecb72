"""The ways users wire the linter in: pre-commit, the GitHub Action, and this repo's own CI."""

from __future__ import annotations

import re

import yaml
from conftest import ROOT


def test_pre_commit_hook_definition():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == "dispatch-kit-lint"
    assert hook["entry"] == "dispatch-kit lint"
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    for name in (
        "prompts/a.md",
        "templates/worker.md.j2",
        "plan.yaml",
        "x.plan.yml",
        ".claude-plugin/plugin.json",
        "t.jinja",
    ):
        assert files.search(name), name
    for name in ("script.py", "README.rst", "image.png"):
        assert not files.search(name), name


def test_pre_commit_entry_runs(cli, tmp_path):
    """What pre-commit runs: the entry, its args and the staged file names."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (tmp_path / "p.md").write_text("[Execute] Fix it.\n", encoding="utf-8")
    (tmp_path / "ci.yaml").write_text("on: push\n", encoding="utf-8")  # not ours: skipped
    args = hooks[0]["entry"].split()[1:] + hooks[0]["args"]
    result = cli(*args, "p.md", "ci.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "p.md:1:1: DK101" in result.stdout


def test_action_is_a_composite_that_writes_sarif_and_fails_on_findings():
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert 'pip install --disable-pip-version-check --quiet "$ACTION_PATH"' in scripts
    assert "--format sarif --output" in scripts
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action"))
    assert "upload-sarif" in upload["if"]
    assert steps[-1]["name"] == "Fail on findings"
    # inputs reach the shell through env, never pasted into the script
    for step in steps:
        assert "${{ inputs." not in step.get("run", ""), step["name"]
