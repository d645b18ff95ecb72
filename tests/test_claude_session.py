"""The plugin in a real Claude Code session, driven offline by a scripted model.

The pinned ``claude`` binary runs for real (plugin loading, the PreToolUse
hook through ``bin/dispatch-kit``, background subagents, tools, files); only
the model is replaced, by :mod:`scripted_model` on 127.0.0.1. These tests
prove that the calls a script makes work in the harness, and what the
harness sends back; they claim nothing about what a real model would do.

Each session runs under a throwaway HOME so it neither reads nor writes the
user's configuration, and is bounded by a timeout that kills the whole
process group; nothing waits for a fixed time.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest
from claude_cli import Session, run_claude
from conftest import ROOT, run_cli
from scripted_model import (
    Reply,
    Request,
    Rule,
    ScriptedModel,
    after_tool_result,
    all_of,
    call,
    fresh_turn,
    main_loop,
    notified,
    say,
    subagent,
)

SESSION_TIMEOUT_S = 45  # a guard only: a session here takes one to a few seconds
PIN = json.loads((ROOT / "tools" / "package.json").read_text(encoding="utf-8"))["devDependencies"][
    "@anthropic-ai/claude-code"
]
# Claude Code names a plugin agent PLUGIN:AGENT; `--plugin-dir` loads it as "<name>@inline".
WORKER = "dispatch-kit:dispatch-worker"
ALLOWED_TOOLS = "Agent,Read,Write,Edit,Bash"
# What Claude Code 2.1.332 gives the dispatch-worker, whose agent file lists
# Read, Write, Edit, Glob, Grep, Bash: the CLI drops Glob and Grep. When the
# pin moves and this changes, the agents' tool lists need a second look.
WORKER_TOOLS = {"Read", "Write", "Edit", "Bash"}

# An [Execute] prompt with no exit criteria, working directory or stream-safety block.
BAD_PROMPT = "[Execute] Edit config/payments.yaml to raise max_retries to 5.\n"
# A prompt the linter passes for the dispatch-worker (checked in the test itself).
GOOD_PROMPT = """\
[Execute] Task `greeting`: Write the greeting file

## Your task
Create hello.txt containing the single line `hello`.

## Where to work
Working directory: `work` (create it if it does not exist yet and change into it first).

## Exit criteria
The task is done when every command below exits 0, run from the working directory.

1. `test -f hello.txt`
2. `grep -qx hello hello.txt`

## Rules
- Start no servers, daemons, watchers or other processes that keep running.
- Create, change and delete files only inside your working directory.
- Commits are not allowed: leave your changes uncommitted.

Stream-safety:
1. Progress marker: before every tool call, print one sentence of at most 80 characters \
saying what the call is for, e.g. "Step 3: running the unit tests." A silent agent looks \
stalled and gets cut off.
2. Short calls: no single tool call may take longer than 60 seconds. Split long reads, \
builds and test runs into several shorter calls.
3. Narrow reads: when a read returns more than 500 lines, narrow the next read of that \
file with offset/limit instead of reading it whole again.

## Report when you finish
End with: Status DONE or BLOCKED, each exit criterion with pass or fail, and every file \
you changed.
"""
AGENT_ID = re.compile(r"agentId: (\w+)")


# ---------------------------------------------------------------------------
# Running a session


def run_session(
    claude: str, model: ScriptedModel, home: Path, project: Path, prompt: str
) -> Session:
    """Run ``claude -p PROMPT`` with the plugin against ``model``; kill it past the guard."""
    return run_claude(claude, model, home, project, prompt, allowed_tools=ALLOWED_TOOLS,
                      guard_s=SESSION_TIMEOUT_S)


def assert_clean(session: Session, model: ScriptedModel) -> None:
    """The session ended normally and every model request was one the script foresaw."""
    evidence = session.evidence(model)
    if session.returncode != 0 or session.result.get("is_error") is not False:
        pytest.fail(f"the session failed\n{evidence}")
    if model.errors:
        pytest.fail(f"scripted-model rules raised: {model.errors}\n{evidence}")
    if model.unmatched:
        indexes = [request.index for request in model.unmatched]
        pytest.fail(f"requests no rule foresaw: {indexes}\n{evidence}")


def first_body_line(agent_file: Path) -> str:
    """The first line of an agent file's body: its system prompt starts there."""
    _, _, body = agent_file.read_text(encoding="utf-8").partition("\n---\n")
    return next(line for line in body.splitlines() if line.strip())


def agent_results(request: Request) -> list[dict]:
    """The tool_result blocks in ``request`` that answer an Agent call of the scripted model."""
    called = {
        block["id"]
        for message in request.messages
        if message.get("role") == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_use" and block.get("name") == "Agent"
    }
    return [block for block in request.tool_results if block.get("tool_use_id") in called]


# ---------------------------------------------------------------------------
# The scripted model on its own (no CLI needed)


@pytest.fixture
def bare_model() -> Iterator[ScriptedModel]:
    rules = [Rule(main_loop, [call("Agent", {"prompt": "p", "description": "d"}, text="Go.")])]
    with ScriptedModel(rules) as model:
        yield model


def post(model: ScriptedModel, path: str, body: dict) -> tuple[int, str]:
    connection = HTTPConnection("127.0.0.1", model.port, timeout=10)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read().decode()


def test_scripted_model_streams_a_tool_call_in_the_api_event_order(bare_model):
    status, text = post(
        bare_model,
        "/v1/messages?beta=true",
        {
            "model": "m",
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "Agent"}],
        },
    )
    assert status == 200
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    kinds = [event["type"] for event in events if event["type"] != "ping"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["text", "tool_use"]
    partial = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == {"prompt": "p", "description": "d"}
    assert [r.kind for r in bare_model.turns()] == ["main"]


def test_scripted_model_answers_token_counts_unknown_routes_and_unforeseen_turns(bare_model):
    status, text = post(bare_model, "/v1/messages/count_tokens", {"messages": []})
    assert status == 200 and json.loads(text)["input_tokens"] >= 1
    status, text = post(bare_model, "/v1/elsewhere", {})
    assert status == 404 and json.loads(text)["type"] == "error"
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "R"}]}
    status, text = post(bare_model, "/v1/messages", body)  # not streamed: one JSON message
    assert status == 200 and json.loads(text)["stop_reason"] == "tool_use"
    status, text = post(bare_model, "/v1/messages", body)  # the only rule is used up
    assert status == 200 and json.loads(text)["stop_reason"] == "end_turn"
    assert [request.index for request in bare_model.unmatched] == [3]


# ---------------------------------------------------------------------------
# The real CLI


def test_cli_reports_the_pinned_version(claude):
    proc = subprocess.run(
        [claude, "--version"], capture_output=True, text=True, timeout=SESSION_TIMEOUT_S
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == PIN.lstrip("^~="), proc.stdout


def test_session_runs_offline_with_the_plugin_loaded(claude, home, project):
    rules = [Rule(all_of(main_loop, fresh_turn), [say("Nothing to dispatch.")], name="reply")]
    with ScriptedModel(rules) as model:
        session = run_session(claude, model, home, project, "Say hello.")
    assert_clean(session, model)
    assert session.result.get("result") == "Nothing to dispatch."
    (turn,) = model.turns()
    # The plugin's agents and skills are offered under the names the CLI gives them.
    assert f"- {WORKER}:" in turn.all_text(), turn.all_text()[-3000:]
    assert "dispatch-kit:workspace-dispatch" in turn.all_text()
    offered = set(turn.loaded_tool_names)
    assert {"Agent", "Read", "Write", "Edit", "Bash"} <= offered, turn.tool_names
    # The skills tell the orchestrator to cancel with TaskStop: here it must be loaded first.
    assert "TaskStop" in turn.deferred_tool_names, turn.deferred_tool_names


def test_hook_blocks_a_bad_dispatch_and_the_model_reads_why(claude, home, project):
    rules = [
        Rule(
            all_of(main_loop, fresh_turn),
            [
                call(
                    "Agent",
                    {
                        "description": "Raise retries",
                        "prompt": BAD_PROMPT,
                        "subagent_type": WORKER,
                        "name": "worker-payments-1",
                    },
                )
            ],
            name="dispatch",
        ),
        Rule(all_of(main_loop, after_tool_result), [say("The dispatch was blocked.")], name="read"),
    ]
    with ScriptedModel(rules) as model:
        session = run_session(claude, model, home, project, "Raise the payment retries.")
    evidence = session.evidence(model)
    assert model.turns("subagent") == [], f"the bad dispatch started a subagent\n{evidence}"
    assert_clean(session, model)
    (after,) = [r for r in model.turns("main") if r.rule == "read"]
    (result,) = agent_results(after)
    text = after.tool_result_text()
    assert result.get("is_error") is True, evidence
    assert "PreToolUse:Agent hook" in text, text
    for code in ("DK101", "DK201", "DK203"):
        assert code in text, text
    assert "dispatch-kit blocked this dispatch" in text, text
    (line,) = session.hook_lines("PreToolUse:Agent")
    assert "finished with status 2" in line, line


def test_hook_lets_a_good_dispatch_through_to_a_background_worker(claude, home, project):
    lint = run_cli("lint", "-", "--agent", "dispatch-worker", input=GOOD_PROMPT)
    assert lint.returncode == 0, lint.output
    work = project / "work"
    report = "Status: DONE\n- test -f hello.txt: pass\n- grep -qx hello hello.txt: pass"

    def worker_report(request: Request) -> Reply:
        """Report what the exit criteria really printed, as a worker must."""
        if "CRITERIA-PASS" in request.tool_result_text():
            return say(f"{report}\nChanged files: hello.txt (uncommitted)")
        return say(f"Status: BLOCKED\n{request.tool_result_text()}")

    rules = [
        Rule(
            all_of(main_loop, fresh_turn),
            [
                call(
                    "Agent",
                    {
                        "description": "Write greeting",
                        "prompt": GOOD_PROMPT,
                        "subagent_type": WORKER,
                        "name": "worker-greeting-1",
                    },
                )
            ],
            name="dispatch",
        ),
        # The notification may arrive with the launch's tool_result or after it.
        Rule(all_of(main_loop, notified), [say("worker-greeting-1 is done.")], name="notified"),
        Rule(all_of(main_loop, after_tool_result), [say("Waiting for the worker.")], name="wait"),
        Rule(
            subagent,
            [
                call(
                    "Write",
                    {"file_path": str(work / "hello.txt"), "content": "hello\n"},
                    text="Step 1: writing hello.txt.",
                ),
                call(
                    "Bash",
                    {
                        "command": f"cd {work} && test -f hello.txt && "
                        "grep -qx hello hello.txt && echo CRITERIA-PASS",
                        "description": "Run the exit criteria",
                    },
                    text="Step 2: running the exit criteria.",
                ),
                worker_report,
            ],
            name="worker",
        ),
    ]
    with ScriptedModel(rules) as model:
        session = run_session(claude, model, home, project, "Write the greeting.")
    assert_clean(session, model)
    evidence = session.evidence(model)
    (line,) = session.hook_lines("PreToolUse:Agent")
    assert "finished with status 0" in line, line

    # The Agent call returned at once: the worker runs in the background by default.
    launched = [r for r in model.turns("main") if agent_results(r)]
    assert len(launched) == 1, evidence
    (result,) = agent_results(launched[0])
    text = launched[0].tool_result_text()
    assert not result.get("is_error"), evidence
    assert "Async agent launched" in text, text
    found = AGENT_ID.search(text)
    assert found, text
    agent_id = found.group(1)

    # The worker's requests carry its agent id, with its own system prompt and tools.
    worker_turns = model.turns("subagent")
    assert len(worker_turns) == 3, evidence
    assert {r.agent_id for r in worker_turns} == {agent_id}, evidence
    assert first_body_line(ROOT / "agents" / "dispatch-worker.md") in worker_turns[0].system_text
    assert GOOD_PROMPT.strip() in worker_turns[0].prompt_text
    assert set(worker_turns[0].tool_names) == WORKER_TOOLS, worker_turns[0].tool_names
    assert (work / "hello.txt").read_text() == "hello\n"
    assert "CRITERIA-PASS" in worker_turns[2].tool_result_text(), evidence

    # Completion comes back to the main loop as a task notification with the report.
    (done,) = [r for r in model.turns("main") if r.rule == "notified"]
    (notice,) = [n for n in done.notifications() if n.get("task-id") == agent_id]
    assert notice.get("status") == "completed", notice
    assert report in notice.get("result", ""), notice
    stats = session.result.get("subagent_stats", {})
    assert stats.get("started_in_background") == 1 and stats.get("completed") == 1, stats
