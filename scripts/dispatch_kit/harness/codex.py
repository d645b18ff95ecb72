"""Codex CLI as the pinned release shows it: plugin layout, the subagent tool, its hook event.

Seen with ``@openai/codex`` 0.171.0 driven by a scripted model (tests/test_harnesses.py):

* Marketplace: ``.agents/plugins/marketplace.json`` wins over the Claude
  ``.claude-plugin/marketplace.json``. ``codex plugin add`` copies the entry's
  folder into ``~/.codex/plugins/cache`` and **drops every symbolic link**, so
  the entry is the checkout itself (``./``): the ``plugin/`` folder of links
  that Claude Code installs would arrive empty.
* Manifest: ``.codex-plugin/plugin.json``; ``skills`` and ``hooks`` are paths
  inside the plugin. Skills are listed by ``codex debug prompt-input`` as
  ``PLUGIN:SKILL``. Agent files are not read.
* Hooks: Claude-style JSON (``PreToolUse`` with a ``matcher``), run with
  ``CLAUDE_PLUGIN_ROOT`` set; a plugin's hooks run only once the user trusts
  them (``/hooks`` in the TUI, or ``--dangerously-bypass-hook-trust``).
  Exit 2 blocks the call and shows stderr to the model.
* Subagents: ``spawn_agent`` in the ``multi_agent_v1`` tool namespace; the
  hook event names the tool ``spawn_agent`` and carries the prompt in
  ``tool_input.message``, with no agent type.
* Model API: the Responses API (``POST /v1/responses``, streamed); this release
  has no chat-completions client.
"""

from __future__ import annotations

from dispatch_kit.harness.dispatch import Dispatch, read_event

NAME = "codex"
PINNED_VERSION = "0.171.0"
NPM_PACKAGE = "@openai/codex"
DISPATCH_TOOL = "spawn_agent"
SHELL_TOOLS = frozenset({"exec_command", "shell", "local_shell"})
MARKETPLACE = ".agents/plugins/marketplace.json"
MANIFEST = ".codex-plugin/plugin.json"
HOOKS = "harnesses/codex/hooks.json"
LAUNCHER = '"${CLAUDE_PLUGIN_ROOT}/bin/dispatch-kit"'


def read_dispatch(event: dict) -> Dispatch | None:
    return read_event(event, NAME, DISPATCH_TOOL, "agent_type", ("message", "prompt"))


def hooks() -> dict:
    """Codex's hooks file: the pre-dispatch check on ``spawn_agent``."""
    return {"hooks": {"PreToolUse": [{"matcher": DISPATCH_TOOL, "hooks": [{
        "type": "command",
        "command": f"{LAUNCHER} hook pre-dispatch --harness {NAME}",
        "timeout": 120,
    }]}]}}
