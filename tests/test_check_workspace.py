"""``check`` and ``attempt finish`` with ``--workspace DIR``: a result verified where it lies.

A worker spawned with ``isolation: "worktree"`` leaves its changes in a git
worktree, not in the plan's workspace. These commands run the task's criteria
with DIR standing in for the workspace, confined to DIR as they are to the
workspace, while the ledger stays the one the plan names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_cli

PLAN = """\
goal: One greeting
workspace: ..
allow_commits: false
defaults: {timeout: 60, max_retries: 1}
tasks:
  - id: greet
    title: Write the greeting
    type: coding
    cwd: src
    exit_criteria:
      - file_exists: hello.txt
      - grep -qx hello hello.txt
  - id: docs
    title: Document the greeting
    type: research
    cwd: docs
    depends_on: [greet]
    exit_criteria: [{file_exists: greeting.md}]
"""


def project(tmp_path: Path) -> tuple[Path, Path]:
    """A project with its plan in .dispatch/, and a "worktree" copy holding the worker's result."""
    root = tmp_path / "project"
    (root / ".dispatch").mkdir(parents=True)
    (root / ".dispatch" / "plan.yaml").write_text(PLAN, encoding="utf-8")
    tree = tmp_path / "worktree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "hello.txt").write_text("hello\n", encoding="utf-8")
    return root, tree


def test_check_runs_the_criteria_in_the_folder_given(tmp_path):
    root, tree = project(tmp_path)
    plan = ".dispatch/plan.yaml"
    plain = run_cli("check", plan, "--task", "greet", "--format", "json", cwd=root)
    assert plain.returncode == 1, plain.output  # nothing in the project's own src/

    there = run_cli("check", plan, "--task", "greet", "--workspace", str(tree), "--format", "json",
                    cwd=root)
    assert there.returncode == 0, there.output
    (task,) = json.loads(there.stdout)["tasks"]
    assert task["passed"] and task["cwd"] == str((tree / "src").resolve()), task
    assert not (root / "src").exists()


def test_the_folder_given_confines_the_criteria_as_the_workspace_does(tmp_path):
    root, tree = project(tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.move(tree / "src", outside)
    (tree / "src").symlink_to(outside, target_is_directory=True)  # passes, if followed
    result = run_cli("check", ".dispatch/plan.yaml", "--task", "greet", "--workspace", str(tree),
                     "--format", "json", cwd=root)
    assert result.returncode == 1, result.output
    (task,) = json.loads(result.stdout)["tasks"]
    verdicts = {c["verdict"] for c in task["criteria"]}
    assert verdicts == {"error"}, task
    assert "outside the workspace" in json.dumps(task), task


def test_a_folder_that_does_not_exist_is_bad_input(tmp_path):
    root, _ = project(tmp_path)
    result = run_cli("check", ".dispatch/plan.yaml", "--workspace", str(tmp_path / "gone"),
                     cwd=root)
    assert result.returncode == 2 and "no such folder" in result.stderr, result.output


def test_attempt_finish_records_the_verdict_of_the_worktree_in_the_projects_ledger(tmp_path):
    root, tree = project(tmp_path)
    plan = ".dispatch/plan.yaml"
    assert run_cli("ledger", "init", plan, cwd=root).returncode == 0
    started = run_cli("attempt", "start", plan, "--task", "greet", "--by", "worker-greet",
                      cwd=root)
    assert started.returncode == 0, started.output
    bad = run_cli("attempt", "finish", plan, "--task", "greet", "--by", "worker-greet",
                  "--workspace", str(tmp_path / "gone"), cwd=root)
    assert bad.returncode == 2, bad.output  # nothing recorded: the attempt is still in flight

    finished = run_cli("attempt", "finish", plan, "--task", "greet", "--by", "worker-greet",
                       "--workspace", str(tree), cwd=root)
    assert finished.returncode == 0, finished.output
    verdict = json.loads(finished.stdout)
    assert (verdict["passed"], verdict["outcome"], verdict["attempt"]) == (True, "verified", 1)
    status = run_cli("ledger", "status", "--plan", plan, "--format", "json", cwd=root)
    states = {t["id"]: t["state"] for t in json.loads(status.stdout)["tasks"]}
    assert states == {"greet": "verified", "docs": "ready"}, states
    assert not (tree / ".dispatch").exists()  # the ledger stayed in the project
