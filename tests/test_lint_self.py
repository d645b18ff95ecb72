"""The pack lints clean: its skills, agents, templates and every prompt the templates render.

A false positive on the pack's own files would be a bug in the linter (or a
real defect in the pack); either way CI should stop.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

PLAN_DIR = EXAMPLES / "wordcount"
VARS = EXAMPLES / "vars"


def test_pack_sources_lint_clean(cli):
    result = cli("lint", "skills", "agents", "templates", "hooks", cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, ""), result.output


def test_pack_manifests_and_example_plan_lint_clean(cli):
    result = cli("lint", "plugin.json", ".claude-plugin", "examples", cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, ""), result.output


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """Every template rendered from the bundled examples, as an orchestrator would."""
    from conftest import run_cli

    work = tmp_path_factory.mktemp("rendered")
    mission = work / "mission"
    shutil.copytree(PLAN_DIR, mission)
    plan = mission / "plan.yaml"
    out = work / "prompts"
    out.mkdir()

    def render(name: str, *args: str) -> None:
        result = run_cli("render", *args, "-o", str(out / f"{name}.md"), cwd=work)
        assert result.returncode == 0, result.output

    for vars_file in sorted(VARS.glob("*.yaml")):
        render(vars_file.stem, vars_file.stem, "--vars", str(vars_file))
    task_ids = [t["id"] for t in _plan_tasks(plan)]
    assert task_ids, "the example plan has tasks"
    for task_id in task_ids:
        render(f"worker-{task_id}", "worker", "--plan", str(plan), "--task", task_id)
    # A retry needs a failed check: the copied workspace is empty, so the first task fails.
    first = task_ids[0]
    check = run_cli("check", str(plan), "--task", first, "--format", "json", cwd=work)
    assert check.returncode == 1, check.output
    result_file = work / "check.json"
    result_file.write_text(check.stdout, encoding="utf-8")
    retry = (
        "retry",
        "--plan",
        str(plan),
        "--task",
        first,
        "--attempt",
        "1",
        "--check",
        str(result_file),
    )
    render(f"retry-{first}", *retry)
    render(f"retry-full-{first}", *retry, "--full")
    return out


def _plan_tasks(plan: Path) -> list[dict]:
    import yaml

    return yaml.safe_load(plan.read_text(encoding="utf-8"))["tasks"]


def test_every_rendered_prompt_lints_clean(cli, rendered):
    names = sorted(p.name for p in rendered.iterdir())
    for expected in ("executor.md", "composite-load.md", "composite-chain.md", "report.md"):
        assert expected in names
    assert any(n.startswith("worker-") for n in names)
    assert any(n.startswith("retry-full-") for n in names)
    result = cli("lint", "--format", "json", str(rendered))
    assert result.returncode == 0, result.output
    assert json.loads(result.stdout) == []


def test_rendered_prompts_carry_the_kinds_the_rules_expect(rendered):
    """Clean because the rules ran, not because nothing was recognised."""
    first_lines = {
        p.name: p.read_text(encoding="utf-8").splitlines()[0] for p in rendered.iterdir()
    }
    assert first_lines["executor.md"].startswith("[Executor]")
    assert first_lines["composite-load.md"].startswith("[Execute]")
    assert all(
        line.startswith("[Execute]") for n, line in first_lines.items() if n.startswith("worker-")
    )
    assert any(
        line.startswith("[Retry]") for n, line in first_lines.items() if n.startswith("retry-")
    )


def test_a_rendered_worker_without_its_block_is_caught(cli, rendered):
    """The same prompt with the stream-safety block cut out fails: the check is live."""
    worker = next(p for p in sorted(rendered.iterdir()) if p.name.startswith("worker-"))
    text = worker.read_text(encoding="utf-8")
    start = text.index("Stream-safety:")
    end = text.index("\n\n", start)
    result = cli("lint", "-", input=text[:start] + text[end + 2 :])
    assert result.returncode == 1
    assert " DK101 " in result.stdout
