"""The ledger tables the guards add: which agent ran each attempt, and when it ended.

Additive to the ledger's schema (``CREATE ... IF NOT EXISTS``, no version
bump): a ledger made before them gains them on the first hook that writes,
and every reader treats a missing table as "no agents recorded". Kept in a
module of its own, free of imports, so that both the ledger package and the
hooks (which must not pay for the ledger package's imports) share one text.

``agents``: one row per Agent-tool dispatch of a plan task's attempt. It is
keyed by the harness's ``tool_use_id`` (shared by PreToolUse and PostToolUse
of one call), which is how the agent id reported after launch finds its
attempt: parallel dispatches can never be crossed. ``agent_stops``: a
SubagentStop that came before the agent id was known (a foreground agent
ends before its PostToolUse), merged when the id arrives.
"""

AGENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id      TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    attempt_id      INTEGER,
    session_id      TEXT,
    tool_use_id     TEXT,
    prompt_hash     TEXT NOT NULL,
    name            TEXT,
    agent_type      TEXT,
    agent_id        TEXT,
    output_file     TEXT,
    transcript_path TEXT,
    requested_at    REAL NOT NULL,
    launched_at     REAL,
    ended_at        REAL,
    end_note        TEXT
);
CREATE INDEX IF NOT EXISTS agents_by_call ON agents (session_id, tool_use_id);
CREATE INDEX IF NOT EXISTS agents_by_agent ON agents (agent_id);
CREATE INDEX IF NOT EXISTS agents_by_task ON agents (mission_id, task_id, id);
CREATE TABLE IF NOT EXISTS agent_stops (
    agent_id        TEXT PRIMARY KEY,
    session_id      TEXT,
    agent_type      TEXT,
    transcript_path TEXT,
    at              REAL NOT NULL
);
"""
