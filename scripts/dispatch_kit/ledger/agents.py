"""Which harness agent ran a task's attempts: the rows the session guards write.

The hooks (``dispatch_kit.guards``) fill the ``agents`` table; the ledger's
own commands only read it, to name the agent a user must stop (``sweep``)
or is waiting for (``status``). A ledger made before the table existed, or
never touched by a hook, simply has no agents.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def latest_agents(conn: Any, mission_id: str) -> dict[str, dict]:
    """task id → its latest recorded dispatch: agent_id, name, attempt, output_file,
    transcript_path, requested_at, ended_at (agent_id None until the launch reported it)."""
    try:
        rows = conn.execute(
            "SELECT task_id, agent_id, name, attempt, output_file, transcript_path, "
            "requested_at, ended_at FROM agents WHERE mission_id = ? ORDER BY id",
            (mission_id,),
        ).fetchall()
    except sqlite3.OperationalError:  # no agents table: no hook ever wrote here
        return {}
    return {row[0]: dict(zip(
        ("task_id", "agent_id", "name", "attempt", "output_file", "transcript_path",
         "requested_at", "ended_at"), tuple(row), strict=True)) for row in rows}
