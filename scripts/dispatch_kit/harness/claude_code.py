"""Claude Code's surface as the pinned CLI shows it: tools, hook events, frontmatter.

Where each fact comes from, so that a pin bump knows what to re-read:

* Tool names and their input parameters: the npm package's ``sdk-tools.d.ts``.
  That file is the source of truth and ``tests/test_harness_surface.py`` reads
  it directly; only the few tools it does not describe are listed here
  (:data:`TOOLS_OUTSIDE_SDK_TYPES`).
* Which tools the main loop and a subagent are actually offered, and which are
  deferred behind ToolSearch: a scripted-model session of the pinned CLI in
  print mode (the model is a local script, everything else is the real CLI).
  The d.ts lists tools a session may never offer: Glob and Grep are described
  there but were offered neither to the main loop nor to a plugin subagent.
* Hook events and their payload fields: hook payloads captured in such a
  session (``tests/fixtures/harness-events/``), plus event names read from the
  binary's own tables.
* Frontmatter fields of skills and agents: the fields the CLI's parser accepts
  (strings in the binary) and, for skills, the portable subset every harness
  and the reference validator accept.

Nothing here is guessed: what a session did not show is not listed.
"""

from __future__ import annotations

PINNED_VERSION = "2.1.332"
NPM_PACKAGE = "@anthropic-ai/claude-code"

# --- tools ---------------------------------------------------------------------

# Offered to the main loop of a print-mode session, with schemas sent up front.
MAIN_LOOP_TOOLS = frozenset(
    """Agent Bash Edit ListAgents Read ReportFindings ScheduleWakeup Skill ToolSearch
    Workflow Write""".split()
)

# Named to the main loop but sent without a schema: the model must first call
# ``ToolSearch{query: "select:NAME"}`` (several: ``select:A,B``) to load them.
DEFERRED_TOOLS = frozenset(
    """CronCreate CronDelete CronList EnterWorktree ExitWorktree Monitor NotebookEdit
    SendMessage TaskStop WebFetch WebSearch""".split()
)
LOAD_DEFERRED_TOOL = "ToolSearch"
LOAD_DEFERRED_QUERY = "select:{name}"

# What a plugin agent is offered when its file lists ``Read, Write, Edit, Glob,
# Grep, Bash``: Glob and Grep are dropped, and it gets no ToolSearch, so it can
# never load a deferred tool (TaskStop, Monitor) either.
PLUGIN_SUBAGENT_OBSERVED = frozenset({"Read", "Write", "Edit", "Bash"})
# What a general-purpose subagent (no ``tools:`` line) is offered.
GENERAL_SUBAGENT_TOOLS = frozenset(
    """Agent Bash Edit ListAgents Read ReportFindings Skill ToolSearch Write""".split()
)
# Tools an agent file's ``tools:`` may name and get: those some subagent was offered.
SUBAGENT_TOOLS = PLUGIN_SUBAGENT_OBSERVED | GENERAL_SUBAGENT_TOOLS

# Described in sdk-tools.d.ts, offered neither to the main loop nor to a subagent.
NOT_OFFERED = frozenset({"Glob", "Grep"})
# Described in sdk-tools.d.ts but deprecated there: name them nowhere.
DEPRECATED_TOOLS = frozenset({"TaskOutput"})

# Offered in sessions but absent from sdk-tools.d.ts: name -> input parameters
# (read from the binary's schema for that tool; empty when none were checked).
TOOLS_OUTSIDE_SDK_TYPES: dict[str, frozenset[str]] = {
    "ToolSearch": frozenset({"query", "max_results"}),
    "Skill": frozenset({"skill", "args"}),
    "ListAgents": frozenset(),
    "SendMessage": frozenset(),
}

# sdk-tools.d.ts names input interfaces after the implementation, not the tool.
SDK_INTERFACE_TOOL_NAMES = {
    "FileReadInput": "Read",
    "FileWriteInput": "Write",
    "FileEditInput": "Edit",
}

# --- the Agent tool ------------------------------------------------------------

# A background Agent call's result (``status: "async_launched"``): the agent id,
# the output file (the subagent's whole JSONL transcript; the launch text says
# not to Read or tail it), then a ``<task-notification>`` in a later turn.
AGENT_ASYNC_RESULT_FIELDS = frozenset(
    {"status", "isAsync", "agentId", "description", "prompt", "outputFile", "canReadOutputFile"}
)
# Completion arrives as a user-role message holding this element.
COMPLETION_NOTIFICATION = "task-notification"

# --- environment ---------------------------------------------------------------

# Concurrent subagents a session runs at once (the CLI's default, when unset).
MAX_CONCURRENT_SUBAGENTS_ENV = "CLAUDE_CODE_MAX_CONCURRENT_SUBAGENTS"
MAX_CONCURRENT_SUBAGENTS_DEFAULT = 20
# ``claude -p`` waits this long after its last turn for background tasks, then
# stops them (0 waits without limit).
PRINT_BG_WAIT_ENV = "CLAUDE_CODE_PRINT_BG_WAIT_CEILING_MS"
PRINT_BG_WAIT_DEFAULT_MS = 600_000

# --- hook events ---------------------------------------------------------------

# Payload fields of the events captured in a real session (tests/fixtures/harness-events).
HOOK_PAYLOADS: dict[str, frozenset[str]] = {
    "SessionStart": frozenset(
        {"session_id", "transcript_path", "cwd", "hook_event_name", "source"}
    ),
    "PreToolUse": frozenset(
        {"session_id", "transcript_path", "cwd", "prompt_id", "permission_mode", "effort",
         "hook_event_name", "tool_name", "tool_input", "tool_use_id"}
    ),
    "PostToolUse": frozenset(
        {"session_id", "transcript_path", "cwd", "prompt_id", "permission_mode", "effort",
         "hook_event_name", "tool_name", "tool_input", "tool_response", "tool_use_id",
         "duration_ms"}
    ),
    "SubagentStart": frozenset(
        {"session_id", "transcript_path", "cwd", "prompt_id", "agent_id", "agent_type",
         "hook_event_name"}
    ),
    "SubagentStop": frozenset(
        {"session_id", "transcript_path", "cwd", "prompt_id", "permission_mode", "agent_id",
         "agent_type", "effort", "hook_event_name", "stop_hook_active", "agent_transcript_path",
         "last_assistant_message", "background_tasks", "session_crons"}
    ),
    "Stop": frozenset(
        {"session_id", "transcript_path", "cwd", "prompt_id", "permission_mode", "effort",
         "hook_event_name", "stop_hook_active", "last_assistant_message", "background_tasks",
         "session_crons"}
    ),
}
# Every event name the CLI accepts in hooks.json (read from the binary).
HOOK_EVENTS = frozenset(HOOK_PAYLOADS) | frozenset(
    """PostToolUseFailure SessionEnd StopFailure UserPromptSubmit PreCompact PostCompact
    Notification TaskCreated TaskCompleted TeammateIdle WorktreeCreate WorktreeRemove
    PermissionRequest PermissionDenied ConfigChange InstructionsLoaded Elicitation
    ElicitationResult Setup""".split()
)
# A workflow's agent() calls fire SubagentStart/SubagentStop with this type and no PreToolUse.
WORKFLOW_AGENT_TYPE = "workflow-subagent"

# --- frontmatter ---------------------------------------------------------------

# Accepted by Claude Code, claude.ai, Codex, OpenClaw and the reference validator.
PORTABLE_SKILL_FIELDS = frozenset(
    {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
)
# Fields the CLI's agent parser reads (``color`` is read by the UI).
AGENT_FIELDS = frozenset(
    """name description prompt tools disallowedTools model effort permissionMode mcpServers
    hooks maxTurns autoCompactWindow skills initialPrompt memory background omitClaudeMd
    isolation color""".split()
)
# A plugin agent that sets these gets a warning and the field is ignored.
PLUGIN_AGENT_IGNORED = frozenset({"permissionMode", "hooks", "mcpServers", "initialPrompt"})
PLUGIN_AGENT_FIELDS = AGENT_FIELDS - PLUGIN_AGENT_IGNORED - {"prompt"}


def offered_tools() -> frozenset[str]:
    """Every tool a session of the pinned CLI can call, loaded or after ToolSearch."""
    return MAIN_LOOP_TOOLS | DEFERRED_TOOLS | SUBAGENT_TOOLS


def load_instruction(tool: str) -> str:
    """The call that makes a deferred tool callable, as skills should write it."""
    return f'{LOAD_DEFERRED_TOOL}{{query: "{LOAD_DEFERRED_QUERY.format(name=tool)}"}}'
