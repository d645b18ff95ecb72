"""Loading a plan into the ledger, re-loading a changed one, and starting over.

Re-running ``init`` with the same plan must be harmless (a cron job does it every time),
and a changed plan must not throw away verified work it did not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch_kit.errors import InputError
from dispatch_kit.ledger.connection import Db
from dispatch_kit.ledger.fingerprint import mission_id_for, plan_fingerprint
from dispatch_kit.ledger.rows import InitResult
from dispatch_kit.ledger.verdicts import finish_if_done
from dispatch_kit.plan.model import Plan


class Missions:
    """The ``init`` and ``reset`` transactions.

    Given only the database: loading a plan writes whole missions and reads none of the
    per-task lookups the other parts share.
    """

    def __init__(self, db: Db) -> None:
        self.db = db

    def init_mission(
        self,
        plan: Plan,
        *,
        mission_id: str | None = None,
        max_tasks: int = 6,
        force: bool = False,
        actor: str | None = None,
    ) -> InitResult:
        """Load ``plan`` (idempotent for the same content; a changed plan needs ``force``).

        With ``force``, verified tasks whose definition and dependencies are
        unchanged stay verified; every other task starts over.
        """
        mid = mission_id_for(plan, mission_id)
        plan_hash, task_hashes = plan_fingerprint(plan)
        plan_path = str(Path(plan.path).resolve()) if plan.path != "<plan>" else plan.path
        workspace = str(Path(plan.workspace).resolve())
        with self.db.tx() as db:
            now = self.db.now(None)
            self.db.store.lock_mission(db, mid)  # racing runners load one plan once
            existing = db.execute(
                "SELECT plan_hash, plan_path, workspace FROM missions WHERE id = ?", (mid,)
            ).fetchone()
            if existing is not None and existing["plan_hash"] == plan_hash:
                if existing["plan_path"] != plan_path or existing["workspace"] != workspace:
                    # The same plan seen from a new place (a moved or re-cloned project).
                    db.execute(
                        "UPDATE missions SET plan_path = ?, workspace = ?, updated_at = ? "
                        "WHERE id = ?",
                        (plan_path, workspace, now, mid),
                    )
                    for task in plan.tasks:
                        db.execute("UPDATE tasks SET cwd = ? WHERE mission_id = ? AND id = ?",
                                   (str(plan.task_dir(task)), mid, task.id))
                return InitResult(mid, "unchanged", len(plan.tasks))
            if existing is not None and not force:
                raise InputError(
                    f"mission {mid!r} was initialised from a different plan "
                    f"({existing['plan_path']}, hash {existing['plan_hash'][:12]}; this plan "
                    f"hashes to {plan_hash[:12]}); pass --force to replace it, or --mission "
                    "NAME to track it as another mission",
                    path=self.db.where,
                )
            old: dict[str, Any] = {}
            dropped: list[str] = []
            if existing is not None:
                old = {
                    row["id"]: row
                    for row in db.execute("SELECT * FROM tasks WHERE mission_id = ?", (mid,))
                }
                for claim in db.execute(
                    "SELECT task_id, attempt_id FROM claims WHERE mission_id = ?", (mid,)
                ).fetchall():
                    dropped.append(claim["task_id"])
                    db.execute(
                        "UPDATE attempts SET outcome = 'released', ended_at = ?, "
                        "error = 'plan replaced' WHERE id = ? AND outcome IS NULL",
                        (now, claim["attempt_id"]),
                    )
                db.execute("DELETE FROM claims WHERE mission_id = ?", (mid,))
                db.execute("DELETE FROM deps WHERE mission_id = ?", (mid,))
                db.execute("DELETE FROM tasks WHERE mission_id = ?", (mid,))
                db.execute(
                    "UPDATE missions SET plan_path = ?, plan_hash = ?, max_tasks = ?, goal = ?, "
                    "workspace = ?, updated_at = ?, finished_at = NULL WHERE id = ?",
                    (plan_path, plan_hash, max_tasks, plan.goal, workspace, now, mid),
                )
            else:
                db.execute(
                    "INSERT INTO missions (id, plan_path, plan_hash, max_tasks, goal, workspace, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (mid, plan_path, plan_hash, max_tasks, plan.goal, workspace, now, now),
                )
            kept: list[str] = []
            for task in plan.order():  # dependencies first, so "kept" is final for them
                prev = old.get(task.id)
                if (
                    prev is not None
                    and prev["state"] == "verified"
                    and prev["task_hash"] == task_hashes[task.id]
                    and all(dep in kept for dep in task.depends_on)
                ):
                    kept.append(task.id)
            for seq, task in enumerate(plan.tasks):
                prev = old.get(task.id)
                keep = task.id in kept
                db.execute(
                    "INSERT INTO tasks (mission_id, id, seq, title, type, cwd, task_hash, timeout, "
                    "max_retries, state, attempt, started_at, finished_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        mid,
                        task.id,
                        seq,
                        task.title,
                        task.type,
                        str(plan.task_dir(task)),
                        task_hashes[task.id],
                        float(task.timeout),
                        int(task.max_retries),
                        "verified" if keep else "ready",
                        prev["attempt"] if keep else 1,
                        prev["started_at"] if keep else None,
                        prev["finished_at"] if keep else None,
                        now,
                    ),
                )
                db.executemany(
                    "INSERT INTO deps (mission_id, task_id, dep_id) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [(mid, task.id, dep) for dep in task.depends_on],
                )
            if existing is None:
                self.db.event(db, mid, None, "init", actor=actor, at=now, plan=plan_path,
                              plan_hash=plan_hash, tasks=len(plan.tasks))
                return InitResult(mid, "created", len(plan.tasks))
            self.db.event(db, mid, None, "reinit", actor=actor, at=now, plan=plan_path,
                          plan_hash=plan_hash, old_hash=existing["plan_hash"], kept=kept,
                          dropped_claims=dropped)
            finish_if_done(db, mid, now, self.db.store.for_update)
            return InitResult(mid, "replaced", len(plan.tasks), kept, dropped)

    def reset_mission(self, mission_id: str, *, actor: str | None = None) -> None:
        """Start the mission over: every task ready at attempt 1 (history stays in events)."""
        with self.db.tx() as db:
            now = self.db.now(None)
            self.db.store.lock_mission(db, mission_id)
            db.execute(
                "UPDATE attempts SET outcome = 'released', ended_at = ?, error = 'mission reset' "
                "WHERE mission_id = ? AND outcome IS NULL",
                (now, mission_id),
            )
            db.execute("DELETE FROM claims WHERE mission_id = ?", (mission_id,))
            db.execute(
                "UPDATE tasks SET state = 'ready', attempt = 1, last_error = NULL, "
                "last_check = NULL, skipped_because = NULL, started_at = NULL, "
                "finished_at = NULL, updated_at = ? WHERE mission_id = ?",
                (now, mission_id),
            )
            db.execute(
                "UPDATE missions SET started_at = NULL, finished_at = NULL, updated_at = ? "
                "WHERE id = ?",
                (now, mission_id),
            )
            self.db.event(db, mission_id, None, "reset", actor=actor, at=now)
