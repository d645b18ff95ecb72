"""Qwen Code as the pinned release shows it: extension layout, agents, tools, its hook event.

Seen with ``@qwen-code/qwen-code`` 0.24.4 driven by a scripted model (tests/test_harnesses.py):

* ``qwen extensions install DIR:NAME`` converts a Claude marketplace entry, but
  its copy **drops symbolic links**: the ``plugin/`` entry arrives without
  skills or agents. Its own extension format installs whole (links are
  copied as the files they point to): ``qwen-extension.json`` with
  ``skills/``, ``agents/`` and ``hooks/hooks.json`` under it, so
  ``harnesses/qwen/`` is that root. ``qwen extensions list`` shows the skills
  and agents.
* Agents: Claude-style frontmatter with ``tools`` as a YAML list of Qwen names;
  the mapping is the one Qwen's own Claude converter applies
  (``CLAUDE_TOOLS_MAPPING``: Bash -> Shell, Read -> ReadFile, ...).
* Hooks: Claude event names (``PreToolUse`` with a ``matcher``); in commands
  only ``${CLAUDE_PLUGIN_ROOT}`` is replaced by the extension's folder (Gemini's
  ``${extensionPath}`` is not, and neither is set in the environment); exit 2
  blocks and shows stderr to the model.
* Subagents: tool ``agent{description, prompt, subagent_type}``.
* Model API: chat completions at ``OPENAI_BASE_URL`` (``OPENAI_API_KEY``,
  ``OPENAI_MODEL``, ``security.auth.selectedType: openai``).
"""

from __future__ import annotations

from dispatch_kit.harness.dispatch import Dispatch, read_event
from dispatch_kit.harness.gemini import translate

NAME = "qwen"
PINNED_VERSION = "0.24.4"
NPM_PACKAGE = "@qwen-code/qwen-code"
DISPATCH_TOOL = "agent"
SHELL_TOOLS = frozenset({"Shell", "run_shell_command"})
ROOT = "harnesses/qwen"
MANIFEST = f"{ROOT}/qwen-extension.json"
AGENT_FOLDERS = (".qwen/agents",)
TOOL_NAMES = {
    "Bash": "Shell",
    "Edit": "Edit",
    "Glob": "Glob",
    "Grep": "Grep",
    "Read": "ReadFile",
    "Write": "WriteFile",
    "Skill": "Skill",
    "TodoWrite": "TodoList",
    "WebFetch": "WebFetch",
    "WebSearch": "WebSearch",
    "AskUserQuestion": "AskUserQuestion",
    "NotebookEdit": "NotebookEdit",
    "LS": "ListFiles",
}
LAUNCHER = '"${CLAUDE_PLUGIN_ROOT}/bin/dispatch-kit"'


def read_dispatch(event: dict) -> Dispatch | None:
    return read_event(event, NAME, DISPATCH_TOOL, "subagent_type")


def agent_frontmatter(front: dict) -> dict:
    out: dict = {"name": front["name"], "description": front["description"]}
    tools = translate(front.get("tools"), TOOL_NAMES)
    if tools is not None:
        out["tools"] = tools
    return out


def hooks() -> dict:
    return {"hooks": {"PreToolUse": [{"matcher": DISPATCH_TOOL, "hooks": [{
        "type": "command",
        "command": f"{LAUNCHER} hook pre-dispatch --harness {NAME}",
    }]}]}}
