"""`make demo` is the first thing a new user runs: it must tell the whole loop's story.

The run step has to show each outcome the workspace-dispatch pattern names:
a task verified first time, one that fails, gets the retry prompt and passes,
one that fails for good, and its dependent skipped. The final states are read
from the ledger the demo leaves behind, not only from what it printed.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, env_for


# The README's story in every environment a user runs it from (conftest.ENVIRONMENTS); cron
# runs from a home folder, so the cron-like run starts elsewhere.
@pytest.mark.parametrize(("where", "environment"), [
    ("repo root", "as today"), ("elsewhere", "as today"),
    ("repo root", "bytecode written"), ("elsewhere", "cron-like"),
])
def test_demo_runs_the_mission_with_a_retry_a_failure_and_a_skip(cli, tmp_path, where,
                                                                 environment):
    out = tmp_path / "demo"
    cwd = ROOT if where == "repo root" else tmp_path
    result = cli("demo", "--out", str(out), cwd=cwd, env=env_for(environment))
    assert result.returncode == 0, result.output
    text = result.output
    assert "verified counter (attempt 1/4)" in text
    # One attempt numbering: the progress line names the next attempt as the ledger does.
    assert "retrying tests: attempt 2/4 next: " in text and "verified tests (attempt 2/4)" in text
    assert "retrying guide: attempt 4/4 next: " in text and " 1/3" not in text
    assert "failed guide after 4 attempts" in text
    assert "skipped review (depends on guide)" in text
    assert "Mission finished with failures: 2 verified, 1 failed, 1 skipped of 4 tasks" in text
    assert "demo: all 7 steps passed" in text

    db = out / "workspace" / ".dispatch" / "ledger.db"
    status = cli("ledger", "status", "--db", str(db), "--format", "json")
    states = {t["id"]: t["state"] for t in json.loads(status.stdout)["tasks"]}
    assert states == {
        "counter": "verified", "tests": "verified", "guide": "failed", "review": "skipped",
    }
    # The worker really wrote the files the verified tasks promise.
    assert "def count_words" in (out / "workspace" / "src" / "wordcount.py").read_text()
    assert (out / "workspace" / "tests" / "test_wordcount.py").is_file()
    # The retry the tests task received carried the attempt number and the error.
    prompts = sorted((out / "workspace" / ".dispatch").rglob("tests*attempt-2*"))
    retry_prompt = next(p for p in prompts if p.suffix == ".md").read_text()
    assert "Previous attempt failed (attempt 1/4)" in retry_prompt
    assert "Fix this specific issue." in retry_prompt
