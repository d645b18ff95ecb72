"""The PreToolUse hook, fed the JSON event the harness sends before an Agent/Task call.

Exit 2 blocks the dispatch and shows stderr to the model; exit 0 lets it
through. The hook must fail open: its own failure never blocks a dispatch.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

CLEAN_PROMPT = (
    ROOT / "tests" / "fixtures" / "lint" / "clean" / "prompts" / "worker-prose.md"
).read_text(encoding="utf-8")
BROKEN_PROMPT = (ROOT / "tests" / "fixtures" / "lint" / "broken" / "worker.md").read_text(
    encoding="utf-8"
)


def event(prompt: str, cwd: Path, subagent: str = "dispatch-worker", tool: str = "Agent") -> str:
    return json.dumps(
        {
            "session_id": "2f0c9c1e-6a53-4a0b-9b0e-0d6f3c1e9a11",
            "transcript_path": str(cwd / "transcript.jsonl"),
            "cwd": str(cwd),
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": {
                "description": "Fix the tokenizer",
                "prompt": prompt,
                "subagent_type": subagent,
            },
        }
    )


def hook(cli, payload: str | bytes, cwd: Path, **env: str):
    return cli("hook", "pre-dispatch", input=payload, cwd=cwd, env=cli_env(**env))


def test_a_bad_dispatch_is_blocked_with_the_findings_on_stderr(cli, tmp_path):
    result = hook(cli, event(BROKEN_PROMPT, tmp_path), tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("dispatch-prompt:1:1: DK101 add the Stream-safety: block")
    assert any(" DK603 " in line for line in lines)  # warnings are shown too
    assert "dispatch-kit blocked this dispatch" in lines[-1]
    assert "DISPATCH_KIT_HOOK=off" in lines[-1]


def test_a_clean_dispatch_passes_silently(cli, tmp_path):
    result = hook(cli, event(CLEAN_PROMPT, tmp_path), tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_warnings_pass_and_are_shown(cli, tmp_path):
    prompt = "[Inspect] Read eval/results.csv: did gpt-4o pass every suite?\n"
    result = hook(cli, event(prompt, tmp_path, subagent="Explore"), tmp_path)
    assert result.returncode == 0
    assert "DK603" in result.stderr and "warnings only, dispatch allowed" in result.stderr


def test_unmarked_prompts_are_checked_as_dispatches(cli, tmp_path):
    prompt = "Review the docs. Poll the CI status every 30 seconds.\n"
    result = hook(cli, event(prompt, tmp_path, subagent="general-purpose"), tmp_path)
    assert result.returncode == 0  # DK502 is a warning
    assert "DK502" in result.stderr


def test_an_unmarked_work_order_is_warned_but_not_blocked(cli, tmp_path):
    """Read as a likely [Execute] prompt: its rules run, as warnings, since a misread
    prompt must not block the session."""
    prompt = "Implement the parser change in src/, run the tests and commit.\n"
    result = hook(cli, event(prompt, tmp_path, subagent="general-purpose"), tmp_path)
    assert result.returncode == 0  # warnings: the dispatch goes through
    lines = result.stderr.splitlines()
    assert any(line.startswith("dispatch-prompt:1:1: DK101 ") for line in lines), lines
    assert all("read as a likely [Execute] prompt" in line for line in lines[:-1]), lines
    assert lines[-1] == "dispatch-kit: warnings only, dispatch allowed"


def test_an_unplaced_unmarked_request_is_warned_but_not_blocked(cli, tmp_path):
    """DK103: a request the kind inference cannot place is warned about, not blocked."""
    prompt = "Run the database migrations, then run the test suite.\n"
    result = hook(cli, event(prompt, tmp_path, subagent="general-purpose"), tmp_path)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert lines[0].startswith("dispatch-prompt:1:1: DK103 this dispatch asks to 'Run the")
    assert "start it with [Execute] (or [Plan])" in lines[0]
    assert not any(" DK101 " in line for line in lines)


def test_a_sure_reading_keeps_its_errors_in_the_hook(cli, tmp_path):
    """An executor that claims, spawns and answers NO_REPLY is unmistakable: its errors block."""
    prompt = (
        "Cron run, killed after 5 minutes. List issues labelled `ready`; if none, print NO_REPLY."
        "\nFor every ready issue: claim it, then spawn one worker for it. Then wait for the"
        " workers and report their results.\n"
    )
    result = hook(cli, event(prompt, tmp_path, subagent="general-purpose"), tmp_path)
    assert result.returncode == 2, result.stderr
    assert " DK302 " in result.stderr and " DK303 " in result.stderr


@pytest.mark.parametrize(
    "prompt",
    [
        "[Inspect] Read src/parser.py and tell me which tests cover tokenize().\n",
        "Read the config and tell me the port; do not edit anything.\n",
        "Does the CI run the tests on every push?\n",
    ],
)
def test_an_unmarked_or_inspect_read_passes_silently(cli, tmp_path, prompt):
    result = hook(cli, event(prompt, tmp_path, subagent="Explore"), tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("subagent", ["domain-editor", "dispatch-kit:domain-editor"])
def test_bash_work_for_the_packs_edit_only_agent_is_blocked(cli, tmp_path, subagent):
    """subagent_type names the target; the pack's own agents/ resolves it."""
    prompt = "Edit config/payments.yaml to raise max_retries to 5, then commit and push it.\n"
    result = hook(cli, event(prompt, tmp_path, subagent=subagent), tmp_path)
    assert result.returncode == 2
    assert "DK401 agent 'domain-editor' has no Bash" in result.stderr


def test_project_agents_are_found_from_the_event_cwd(cli, tmp_path):
    (tmp_path / ".claude" / "agents").mkdir(parents=True)
    (tmp_path / ".claude" / "agents" / "copy-editor.md").write_text(
        "---\nname: copy-editor\ndescription: Edits prose.\ntools: Read, Edit\n---\n", "utf-8"
    )
    prompt = "Tighten the wording of docs/intro.md, then run the docs build.\n"
    result = hook(cli, event(prompt, tmp_path, subagent="copy-editor"), tmp_path)
    assert result.returncode == 2 and "DK401" in result.stderr


def test_old_tool_name_task_is_checked_too(cli, tmp_path):
    result = hook(cli, event(BROKEN_PROMPT, tmp_path, tool="Task"), tmp_path)
    assert result.returncode == 2


def test_other_tools_are_not_judged(cli, tmp_path):
    result = hook(cli, event(BROKEN_PROMPT, tmp_path, tool="Bash"), tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


def test_project_config_applies(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dispatch-kit]\nignore = ["DK1", "DK2"]\n', encoding="utf-8"
    )
    result = hook(cli, event(BROKEN_PROMPT, tmp_path), tmp_path)
    assert result.returncode == 0  # only warnings remain
    assert "DK101" not in result.stderr and "DK603" in result.stderr


@pytest.mark.parametrize("value", ["off", "0", "false", "OFF"])
def test_can_be_turned_off(cli, tmp_path, value):
    result = hook(cli, event(BROKEN_PROMPT, tmp_path), tmp_path, DISPATCH_KIT_HOOK=value)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"tool_name": "Agent", "tool_input": {"description": "no prompt"}}).encode(),
        json.dumps({"tool_name": "Agent", "tool_input": "prompt as a string"}).encode(),
    ],
)
def test_fails_open_on_an_unreadable_event(cli, tmp_path, payload):
    result = hook(cli, payload, tmp_path)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "dispatch-kit hook: check skipped, dispatch allowed"
    )


def test_fails_open_on_a_broken_project_config(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.dispatch-kit]\nselect = 3\n", "utf-8")
    result = hook(cli, event(BROKEN_PROMPT, tmp_path), tmp_path)
    assert result.returncode == 0
    assert "check skipped, dispatch allowed" in result.stderr
    assert "select must be a list of strings" in result.stderr


def test_hooks_json_runs_this_command_on_agent_and_task():
    config = json.loads((ROOT / "hooks" / "hooks.json").read_text(encoding="utf-8"))
    (entry,) = config["hooks"]["PreToolUse"]
    assert entry["matcher"] == "Agent|Task"
    (command,) = entry["hooks"]
    assert command["type"] == "command"
    assert command["command"] == '"${CLAUDE_PLUGIN_ROOT}/bin/dispatch-kit" hook pre-dispatch'


def test_the_configured_command_blocks_a_bad_dispatch(tmp_path):
    """Run the hooks.json command line as the harness does: through a shell, event on stdin."""
    config = json.loads((ROOT / "hooks" / "hooks.json").read_text(encoding="utf-8"))
    command = config["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    env = dict(os.environ, CLAUDE_PLUGIN_ROOT=str(ROOT), CLAUDE_PLUGIN_DATA=str(tmp_path / "data"))
    proc = subprocess.run(
        ["/bin/sh", "-c", command],
        input=event(BROKEN_PROMPT, tmp_path).encode(),
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert "DK101" in stderr and "Traceback" not in stderr
