"""One neutral dispatch event, and the adapter that reads each harness's hook event into it.

Every harness with a pre-tool hook sends the same facts when its model starts
a subagent (which tool, the prompt, the agent type, the folder) under its own
names: Claude Code's ``Agent{prompt, subagent_type}``, Codex's
``spawn_agent{message}``, Gemini CLI's ``invoke_agent{agent_name, prompt}``
(event ``BeforeTool``), Qwen Code's ``agent{prompt, subagent_type}``, OpenCode's
``task`` (through the plugin this pack ships). Each harness module knows its
own names; this module turns an event into :class:`Dispatch` and back into the
event shape the guards read, so the lint gate and the ledger guards never
learn a harness's vocabulary. Stdlib only and imported lazily: it runs on the
hook path, where every millisecond is the user's.
"""

from __future__ import annotations

import json
from collections import namedtuple
from importlib import import_module

# Harness name -> module under dispatch_kit.harness (imported only when asked for).
MODULES = {
    "claude-code": "claude_code",
    "codex": "codex",
    "gemini": "gemini",
    "qwen": "qwen",
    "opencode": "opencode",
    "copilot": "copilot",
}
# Which harness names its subagent tool so, for events that do not say which harness sent them.
TOOL_HARNESS = {
    "spawn_agent": "codex",
    "invoke_agent": "gemini",
    "agent": "qwen",
    "task": "opencode",
}


class Dispatch(
    namedtuple(
        "Dispatch",
        "harness tool prompt agent_type cwd session_id tool_use_id name",
        defaults=(None, None, None, None, None),
    )
):
    """What every harness's pre-tool event says about one subagent dispatch.

    A named tuple (immutable, fields by name) rather than a dataclass: importing
    dataclasses costs the hook ~8 ms, as much as the rest of its adapter.
    Fields: harness, tool, prompt; then agent_type, cwd, session_id,
    tool_use_id and name, each None when the event does not say.
    """

    __slots__ = ()

    def as_gate_event(self) -> bytes:
        """The event the guards read (``Agent`` on ``PreToolUse``), carrying the harness's name.

        The guards' reader is the one shape every adapter writes, so a guard
        added later works for every harness at once.
        """
        tool_input = {"prompt": self.prompt}
        if self.agent_type:
            tool_input["subagent_type"] = self.agent_type
        if self.name:
            tool_input["name"] = self.name
        event = {"hook_event_name": "PreToolUse", "tool_name": "Agent", "tool_input": tool_input,
                 "harness": self.harness, "harness_tool": self.tool}
        for key in ("cwd", "session_id", "tool_use_id"):
            value = getattr(self, key)
            if value:
                event[key] = value
        return json.dumps(event).encode("utf-8")


def text(mapping: dict, key: str) -> str | None:
    """A non-empty string field, or None."""
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def read_event(event: dict, harness: str, tool: str, agent_key: str,
               prompt_keys: tuple[str, ...] = ("prompt",)) -> Dispatch | None:
    """The dispatch a harness's pre-tool event describes, or None when it is not one.

    Every adapter reads the same fields and differs only in its tool's name,
    where the prompt sits (the first of ``prompt_keys`` present) and which
    argument names the agent type.
    """
    if event.get("tool_name") != tool:
        return None
    args = tool_input(event)
    prompt = next((found for key in prompt_keys if (found := text(args, key))), None)
    if prompt is None:
        return None
    return Dispatch(harness, tool, prompt, text(args, agent_key), text(event, "cwd"),
                    text(event, "session_id"), text(event, "tool_use_id"))


def tool_input(event: dict) -> dict:
    value = event.get("tool_input")
    return value if isinstance(value, dict) else {}


def adapter(harness: str):  # noqa: ANN201 - a module
    """The module of harness ``harness``; KeyError for a name this version does not know."""
    return import_module(f"dispatch_kit.harness.{MODULES[harness]}")


def detect(event: dict) -> str:
    """The harness that sent ``event``, from its tool's name; Claude Code when none matches."""
    if event.get("hook_event_name") == "BeforeTool":
        return "gemini"
    return TOOL_HARNESS.get(str(event.get("tool_name")), "claude-code")


def read(event: dict, harness: str | None = None) -> Dispatch | None:
    """The dispatch in ``event`` (None: not a subagent dispatch, or no adapter reads it)."""
    name = harness or detect(event)
    module = adapter(name)
    reader = getattr(module, "read_dispatch", None)
    return reader(event) if reader is not None else None
