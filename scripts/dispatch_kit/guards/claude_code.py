"""Claude Code's hook events and answers: the one module here that knows the harness.

What a hook receives is JSON on stdin (the payloads captured from the pinned
CLI are in ``tests/fixtures/harness-events/``); what it may answer is an exit
code, stderr, or a JSON object on stdout. This module reads the first and
writes the second, so the guards work on plain values and a change in the
harness (a renamed tool, a new field) is fixed in one place.

- PreToolUse / PostToolUse / PostToolUseFailure on the Agent tool (``Task``
  before 2.1): ``tool_input.prompt``, ``tool_input.name``, ``tool_use_id``;
  PostToolUse adds ``tool_response.agentId`` and ``outputFile``.
- SubagentStart / SubagentStop: ``agent_id``, ``agent_type`` (a workflow's
  ``agent()`` call is ``workflow-subagent``), SubagentStop adds
  ``agent_transcript_path``.
- SessionStart: ``source`` (startup, resume, clear, compact); context is
  added with ``hookSpecificOutput.additionalContext``.
- Stop: ``stop_hook_active`` (true once a Stop hook has blocked this turn);
  ``{"decision": "block", "reason": ...}`` keeps the turn going with the reason.
- Exit 2 on PreToolUse blocks the call and shows stderr to the model.
"""

from __future__ import annotations

import json

DISPATCH_TOOLS = ("Agent", "Task")
WORKFLOW_AGENT = "workflow-subagent"
BLOCK = 2


def read_event(raw: bytes) -> dict:
    """The event object; ValueError (with a short reason) when it is not one."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the hook event is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError("the hook event is not a JSON object")
    return event


def text(event: dict, key: str) -> str | None:
    """A string field of the event, or None when absent or not a string."""
    value = event.get(key)
    return value if isinstance(value, str) and value else None


def is_dispatch(event: dict) -> bool:
    return event.get("tool_name") in DISPATCH_TOOLS


def tool_input(event: dict) -> dict:
    value = event.get("tool_input")
    return value if isinstance(value, dict) else {}


def dispatch_prompt(event: dict) -> str | None:
    prompt = tool_input(event).get("prompt")
    return prompt if isinstance(prompt, str) else None


def dispatch_agent_type(event: dict) -> str | None:
    agent = tool_input(event).get("subagent_type")
    return agent if isinstance(agent, str) and agent else None


def dispatch_name(event: dict) -> str | None:
    name = tool_input(event).get("name")
    return name if isinstance(name, str) and name else None


def launched(event: dict) -> tuple[str | None, str | None, str | None]:
    """(agent id, output file, status) from a PostToolUse on the Agent tool."""
    response = event.get("tool_response")
    if not isinstance(response, dict):
        return None, None, None
    agent = response.get("agentId")
    output = response.get("outputFile")
    status = response.get("status")
    return (
        agent if isinstance(agent, str) and agent else None,
        output if isinstance(output, str) and output else None,
        status if isinstance(status, str) else None,
    )


def is_workflow_agent(event: dict) -> bool:
    return event.get("agent_type") == WORKFLOW_AGENT


def session_context(text_: str) -> str:
    """SessionStart's answer that adds ``text_`` to the model's context."""
    return json.dumps(
        {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": text_}}
    ) + "\n"


def stop_block(reason: str) -> str:
    """Stop's answer that keeps the turn going once, with ``reason`` for the model."""
    return json.dumps({"decision": "block", "reason": reason}) + "\n"
