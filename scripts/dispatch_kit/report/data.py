"""The ledger read into what the page draws: tasks, their attempts, their last failure.

The status document has per-task totals; the page also needs each attempt's
times and outcome (the timeline) and the checker's entry of the last failure (the
criterion and its output tail), which only the ledger's tables hold.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from dispatch_kit.ledger import Ledger


@dataclass(frozen=True)
class Attempt:
    number: int
    start: float
    end: float | None  # None: still running
    outcome: str | None  # None: in flight
    timed_out: bool
    exit_code: int | None
    error: str | None


@dataclass
class TaskView:
    id: str
    title: str
    state: str
    depends_on: list[str]
    attempt: int
    max_attempts: int
    ready_at: float | None  # when its dependencies were all verified (or the mission began)
    skipped_because: str | None
    error: str | None
    agent: str | None
    attempts: list[Attempt] = field(default_factory=list)
    last_check: dict | None = None  # the checker's entry of the latest failed attempt


@dataclass
class MissionView:
    mission: str
    goal: str
    state: str
    counts: dict
    started: float | None
    ended: float
    now: float
    duration: float | None
    tasks: list[TaskView]


def load(ledger: Ledger, mission: str, *, now: float | None = None) -> MissionView:
    now = time.time() if now is None else now
    status = ledger.status(mission, now=now)
    conn = ledger.conn
    rows = conn.execute(
        "SELECT task_id, number, claimed_at, dispatched_at, ended_at, outcome, timed_out, "
        "exit_code, error FROM attempts WHERE mission_id = ? ORDER BY id", (mission,)).fetchall()
    extra = {r[0]: r for r in conn.execute(
        "SELECT id, last_check, finished_at, started_at FROM tasks WHERE mission_id = ?",
        (mission,))}
    attempts: dict[str, list[Attempt]] = {}
    for r in rows:
        if r["outcome"] == "released" and r["dispatched_at"] is None:
            continue  # a claim given back before its worker started: no attempt spent
        attempts.setdefault(r["task_id"], []).append(Attempt(
            r["number"], r["dispatched_at"] or r["claimed_at"], r["ended_at"], r["outcome"],
            bool(r["timed_out"]), r["exit_code"], r["error"]))
    first = min((a.start for items in attempts.values() for a in items), default=None)
    mrow = conn.execute("SELECT started_at FROM missions WHERE id = ?", (mission,)).fetchone()
    started = min(x for x in (first, mrow[0] if mrow else None) if x is not None) \
        if (first is not None or (mrow and mrow[0])) else None
    finished = {tid: row["finished_at"] for tid, row in extra.items()}
    tasks = []
    for t in status["tasks"]:
        deps = t["depends_on"]
        dep_ends = [finished.get(d) for d in deps]
        if not deps:
            ready = started
        elif all(finished.get(d) is not None and s == "verified" for d, s in
                 ((d, _state(status, d)) for d in deps)):
            ready = max(e for e in dep_ends if e is not None)
        else:
            ready = None
        last_check = None
        raw = extra[t["id"]]["last_check"] if t["id"] in extra else None
        if raw:
            try:
                parsed = json.loads(raw)
                last_check = parsed if isinstance(parsed, dict) else None
            except ValueError:
                last_check = None
        tasks.append(TaskView(
            id=t["id"], title=t["title"], state=t["state"], depends_on=deps,
            attempt=t["attempt"], max_attempts=t["max_attempts"], ready_at=ready,
            skipped_because=t["skipped_because"], error=t["error"], agent=t.get("agent"),
            attempts=attempts.get(t["id"], []), last_check=last_check))
    ends = [a.end or now for items in attempts.values() for a in items]
    ended = max(ends) if ends else (started or now)
    if status["state"] == "in_progress":
        ended = max(ended, now)
    return MissionView(status["mission"], status["goal"], status["state"], status["counts"],
                       started, ended, now, status["duration"], tasks)


def _state(status: dict, task_id: str) -> str | None:
    for t in status["tasks"]:
        if t["id"] == task_id:
            return t["state"]
    return None
