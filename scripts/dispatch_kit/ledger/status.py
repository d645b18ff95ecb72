"""The mission's status document and its event history, as plain data.

One document feeds ``ledger status``, the runner's report and the Markdown template, so
what counts as an attempt or a duration is decided here once.
"""

from __future__ import annotations

import json

from dispatch_kit.ledger.agents import latest_agents
from dispatch_kit.ledger.connection import Db
from dispatch_kit.ledger.queries import Queries
from dispatch_kit.ledger.rows import iso, mapping
from dispatch_kit.ledger.schema import TERMINAL


class Reports:
    """Read-only views over a whole mission.

    Given the database and the shared queries: a report reads the same missions, tasks
    and claims the transactions do, inside one snapshot, and changes nothing.
    """

    def __init__(self, db: Db, queries: Queries) -> None:
        self.db = db
        self.queries = queries

    def status(self, mission_id: str, *, now: float | None = None) -> dict:
        """The completion report as data: what ``ledger status`` and the runner print."""
        now = self.db.now(now)
        with self.db.read() as db:
            mission = self.queries.mission(mission_id)
            tasks = self.queries.tasks(mission_id)
            attempts: dict[str, list] = {}
            for row in db.execute(
                "SELECT * FROM attempts WHERE mission_id = ? ORDER BY id", (mission_id,)
            ):
                attempt = mapping(row)
                attempts.setdefault(attempt["task_id"], []).append(attempt)
            claims = {c.task_id: c for c in self.queries.claims(mission_id)}
            agents = latest_agents(db, mission_id)
            deps: dict[str, list[str]] = {}
            for row in db.execute(
                "SELECT d.task_id, d.dep_id FROM deps d JOIN tasks t "
                "ON t.mission_id = d.mission_id AND t.id = d.dep_id "
                "WHERE d.mission_id = ? ORDER BY t.seq",
                (mission_id,),
            ):
                deps.setdefault(row[0], []).append(row[1])
        counts = {"verified": 0, "failed": 0, "skipped": 0, "pending": 0}
        state_of = {task.id: task.state for task in tasks}
        out_tasks = []
        for task in tasks:
            status = task.state if task.state in TERMINAL else "pending"
            counts[status] += 1
            tries = [a for a in attempts.get(task.id, []) if a["outcome"] not in
                     ("released", "interrupted")]
            spent = 0.0
            for a in tries:
                if a["dispatched_at"] is not None:
                    spent += (a["ended_at"] or now) - a["dispatched_at"]
            claim = claims.get(task.id)
            last = tries[-1] if tries else None
            out_tasks.append({
                "id": task.id,
                "title": task.title,
                "type": task.type,
                "cwd": task.cwd,
                "depends_on": deps.get(task.id, []),
                # What the task still waits for: a verified dependency no longer holds it.
                "waiting_on": [d for d in deps.get(task.id, []) if state_of.get(d) != "verified"],
                "state": task.state,
                "status": status,
                "attempt": task.attempt,
                "attempts": len(tries),
                "max_attempts": task.max_attempts,
                "duration": round(spent, 3),
                "error": task.last_error if task.state != "verified" else None,
                "skipped_because": task.skipped_because,
                "holder": claim.holder if claim else None,
                "lease_expires": iso(claim.lease_expires) if claim else None,
                "pid": claim.pid if claim else None,
                "log": last["log_path"] if last else None,
                # The harness agent of the latest dispatch, when a session hook recorded it.
                "agent": (agents.get(task.id) or {}).get("agent_id"),
            })
        if counts["pending"]:
            state = "in_progress"
        elif counts["verified"] == len(tasks):
            state = "complete"
        else:
            state = "failed"
        start, end = mission.started_at, mission.finished_at
        duration = None if start is None else round((end or now) - start, 3)
        return {
            "version": 1,
            "mission": mission.id,
            "goal": mission.goal,
            "plan": mission.plan_path,
            "plan_hash": mission.plan_hash,
            "workspace": mission.workspace,
            "ledger": self.db.where,
            "state": state,
            "started_at": iso(start),
            "finished_at": iso(end),
            "duration": duration,
            "counts": counts,
            "tasks": out_tasks,
        }

    def events(self, mission_id: str, *, task_id: str | None = None,
               after: int = 0) -> list[dict]:
        """The mission's events in order (only those after sequence number ``after``)."""
        sql = "SELECT * FROM events WHERE mission_id = ? AND seq > ?"
        params: tuple = (mission_id, after)
        if task_id is not None:
            sql += " AND task_id = ?"
            params += (task_id,)
        rows = self.db.conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [mapping(row) | {"detail": json.loads(row["detail"])} for row in rows]
