"""Gemini CLI as the pinned release shows it: extension layout, agents, tools, its hook event.

Seen with ``@google/gemini-cli`` 0.61.0 driven by a scripted model (tests/test_harnesses.py):

* Extension root: ``gemini-extension.json`` (``name``, ``version``, ...), with
  ``skills/``, ``agents/*.md`` and ``hooks/hooks.json`` at fixed places under
  it. The root of this repository cannot be that root (its ``agents/`` and
  ``hooks/`` are Claude Code's), so ``harnesses/gemini/`` is: generated files
  plus links to the pack's folders. ``gemini extensions install`` copies it
  (links become absolute, into the clone); ``gemini extensions link`` does not.
  Both need the folder trusted (``~/.gemini/trustedFolders.json`` or the prompt).
* Agents: frontmatter checked strictly (``name``, ``description``, ``tools`` as
  a YAML list of Gemini tool names, ``max_turns``, ``model``, ...); a file that
  is a link is skipped.
* Hooks: events ``BeforeTool`` / ``AfterTool`` (``PreToolUse`` is skipped),
  ``${extensionPath}`` in commands; exit 2 blocks and returns stderr to the
  model as the tool's error.
* Subagents: ``invoke_agent{agent_name, prompt}``.
* Model API: ``POST /v1beta/models/MODEL:streamGenerateContent`` at
  ``GOOGLE_GEMINI_BASE_URL`` with ``GEMINI_API_KEY``.
"""

from __future__ import annotations

from dispatch_kit.harness.dispatch import Dispatch, read_event

NAME = "gemini"
PINNED_VERSION = "0.61.0"
NPM_PACKAGE = "@google/gemini-cli"
DISPATCH_TOOL = "invoke_agent"
SHELL_TOOLS = frozenset({"run_shell_command"})
ROOT = "harnesses/gemini"
MANIFEST = f"{ROOT}/gemini-extension.json"
AGENT_FOLDERS = (".gemini/agents",)
# Claude Code tool -> Gemini CLI tool (0.61.0's built-in names).
TOOL_NAMES = {
    "Read": "read_file",
    "Write": "write_file",
    "Edit": "replace",
    "Glob": "glob",
    "Grep": "grep_search",
    "Bash": "run_shell_command",
    "WebFetch": "web_fetch",
    "WebSearch": "google_web_search",
    "TodoWrite": "write_todos",
    "Skill": "activate_skill",
}
LAUNCHER = '"${extensionPath}/bin/dispatch-kit"'


def read_dispatch(event: dict) -> Dispatch | None:
    return read_event(event, NAME, DISPATCH_TOOL, "agent_name")


def agent_frontmatter(front: dict) -> dict:
    """A pack agent's frontmatter in Gemini CLI's strict schema."""
    out: dict = {"name": front["name"], "description": front["description"]}
    tools = translate(front.get("tools"), TOOL_NAMES)
    if tools is not None:
        out["tools"] = tools
    if isinstance(front.get("maxTurns"), int):
        out["max_turns"] = front["maxTurns"]
    return out


def hooks() -> dict:
    return {"hooks": {"BeforeTool": [{"matcher": DISPATCH_TOOL, "hooks": [{
        "type": "command",
        "name": "dispatch-kit pre-dispatch",
        "command": f"{LAUNCHER} hook pre-dispatch --harness {NAME}",
    }]}]}}


def translate(tools: object, names: dict[str, str]) -> list[str] | None:
    """A Claude ``tools:`` value (comma string or list) in another harness's names.

    A tool the other harness has no counterpart for is left out: naming it
    would make a strict harness reject the whole agent.
    """
    if tools is None:
        return None
    items = tools.split(",") if isinstance(tools, str) else tools if isinstance(tools, list) else []
    out: list[str] = []
    for item in items:
        base = str(item).split("(", 1)[0].strip()
        mapped = names.get(base)
        if mapped and mapped not in out:
            out.append(mapped)
    return out
