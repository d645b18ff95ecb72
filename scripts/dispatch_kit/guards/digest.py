"""The short texts the guards hand the model: mission state, what still runs, a refusal.

Each is what an orchestrator needs to act without its memory, in as few
tokens as will do (the whole state of a 6-task mission in under 300): which
agents run for which attempt and for how long, which are past their lease,
what is ready, what failed and was skipped, and the next command.
"""

from __future__ import annotations

import os

from dispatch_kit.guards import store

TYPE_CHECKING = False  # typing itself costs a cold start ~5 ms

if TYPE_CHECKING:
    import sqlite3


def shown(path: str, cwd: str) -> str:
    """A ledger path as the orchestrator would type it from the session's folder."""
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel


def db_args(path: str, cwd: str, mission: str, several: bool) -> str:
    args = f"--db {shown(path, cwd)}"
    return args + (f" --mission {mission}" if several else "")


def _agent(entry: dict) -> str:
    agent = entry["agent"]
    if agent is None:
        return f"held by {entry['holder']}"
    if agent["agent_id"]:
        name = f" ({agent['name']})" if agent["name"] else ""
        return f"agent {agent['agent_id']}{name}"
    return f"dispatch {agent['tool_use_id'] or agent['name'] or '?'} (agent id not reported yet)"


def mission_state(conn: sqlite3.Connection, path: str, cwd: str, mission: str, *,
                  several: bool, now: float) -> str:
    """The state of one open mission, for SessionStart's additional context."""
    tasks = conn.execute(
        "SELECT id, state, attempt, max_retries, last_error, skipped_because FROM tasks "
        "WHERE mission_id = ? ORDER BY seq", (mission,),
    ).fetchall()
    unmet = {r[0] for r in conn.execute(
        "SELECT x.task_id FROM deps x JOIN tasks u ON u.mission_id = x.mission_id "
        "AND u.id = x.dep_id WHERE x.mission_id = ? AND u.state != 'verified'", (mission,),
    )}
    flight = store.in_flight(conn, mission, now)
    counts: dict[str, int] = {}
    ready, waiting = [], []
    for task in tasks:
        counts[task["state"]] = counts.get(task["state"], 0) + 1
        if task["state"] == "ready":
            (waiting if task["id"] in unmet else ready).append(task["id"])
    args = db_args(path, cwd, mission, several)
    order = ("verified", "dispatched", "claimed", "failed", "skipped")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    if ready:
        parts.append(f"{len(ready)} ready")
    if waiting:
        parts.append(f"{len(waiting)} waiting")
    lines = [f"dispatch-kit mission {mission} ({shown(path, cwd)}): {', '.join(parts)}."]
    hung = [e for e in flight if e["expired"]]
    for entry in flight:
        age = store.ago(now - entry["since"])
        what = f"{entry['task']} attempt {entry['attempt']}/{entry['max']}, {_agent(entry)}, {age}"
        agent = entry["agent"]
        if agent is not None and agent["ended_at"] is not None:
            lines.append(f"- ended, verdict not recorded: {what}: run `dispatch-kit check` "
                         "and `dispatch-kit ledger record`.")
        elif entry["expired"]:
            lines.append(f"- hung (lease expired): {what}: stop it with TaskStop.")
        else:
            lines.append(f"- running: {what}: do not dispatch it again; wait for its "
                         "notification.")
    if ready:
        lines.append(f"- ready: {', '.join(ready)}")
    for task in tasks:
        if task["state"] == "failed":
            error = (task["last_error"] or "").strip().splitlines()
            why = error[0][:90] if error else "exit criteria not met"
            lines.append(f"- failed: {task['id']} after {task['attempt']} attempts: {why}")
    skipped = [f"{t['id']} (after {t['skipped_because']})" for t in tasks
               if t["state"] == "skipped"]
    if skipped:
        lines.append(f"- skipped: {', '.join(skipped)}")
    if hung:
        lines.append(f"Next: `dispatch-kit ledger sweep {args}` once the hung agents are "
                     "stopped.")
    elif ready:
        lines.append(f"Next: `dispatch-kit ledger next {args}`.")
    elif flight:
        lines.append(f"Next: wait for the notifications; `dispatch-kit ledger status {args}` "
                     "shows the mission.")
    return "\n".join(lines)


def refusal(live: sqlite3.Row, task: str, mission: str, args: str, now: float) -> str:
    """One line: which agent runs the task, what to do, and the command that shows it."""
    if live["agent_id"]:
        who = f"agent {live['agent_id']}"
    else:
        who = f"a dispatch whose agent id is not reported yet (tool use {live['tool_use_id']})"
    name = f" ({live['name']})" if live["name"] else ""
    age = store.ago(now - live["requested_at"])
    return (
        f"dispatch-kit: refused, task {task} of mission {mission} (attempt {live['attempt']}) "
        f"is still running as {who}{name}, dispatched {age} ago: wait for its task "
        f"notification, or stop it with TaskStop before dispatching again; "
        f"`dispatch-kit ledger status {args}` shows it "
        f"(DISPATCH_KIT_GUARD_DUPLICATE=off turns this check off)\n"
    )


def still_running(entries: list[tuple[str, dict]], session: str | None, now: float) -> str:
    """Stop's reason: the attempts this session started that have not ended."""
    items = []
    for mission, entry in entries:
        age = store.ago(now - entry["since"])
        items.append(f"{entry['task']} (mission {mission}, attempt {entry['attempt']}, "
                     f"{_agent(entry)}, {age})")
    return (
        f"dispatch-kit: {len(items)} dispatched attempt(s) still running: {'; '.join(items)}. "
        "Wait for their task notifications and record each verdict, or stop them with "
        "TaskStop and run `dispatch-kit ledger sweep`; ending now leaves them unrecorded. "
        "(Shown once: the next stop is not held.)"
    )


def journal_entry(row: dict) -> dict:
    """A live request of the local journal as :func:`in_flight` gives an attempt."""
    return {"task": row["task"], "attempt": row["attempt"], "since": row["requested_at"],
            "agent": {"agent_id": row["agent_id"], "name": row["name"],
                      "tool_use_id": row["tool_use_id"]}}


def journal_state(rows: list[dict], env_set: bool, now: float) -> str:
    """SessionStart's lines for the dispatches of a PostgreSQL ledger's local journal."""
    lines = ["dispatch-kit: dispatches recorded in the local journal (the PostgreSQL ledger "
             "imports it):"]
    for row in rows:
        entry = journal_entry(row)
        age = store.ago(now - row["requested_at"])
        lines.append(f"- running: {row['task']} (mission {row['mission']}) attempt "
                     f"{row['attempt']}, {_agent(entry)}, {age}: do not dispatch it again; "
                     "wait for its notification.")
    db = "" if env_set else f" --db {rows[0]['ledger']}" if "ledger" in rows[0] else ""
    lines.append(f"Next: `dispatch-kit ledger status{db}` shows the mission.")
    return "\n".join(lines)
