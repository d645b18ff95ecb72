"""Naming a mission and hashing a plan, so re-loading the same plan is a no-op.

The hash covers content only (not comments or layout), which is what lets ``ledger init``
be idempotent and lets a changed plan keep the verified tasks it did not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from dispatch_kit.plan.model import Plan


def mission_id_for(plan: Plan, override: str | None = None) -> str:
    """The mission's name in the ledger: ``--mission``, else the plan file's stem."""
    if override:
        return override
    extra = plan.extra.get("mission") if isinstance(plan.extra, dict) else None
    if isinstance(extra, str) and extra.strip():
        return extra.strip()
    stem = Path(plan.path).stem if plan.path and plan.path != "<plan>" else ""
    return stem or "mission"


def _task_doc(plan: Plan, task) -> dict:
    criteria = []
    for crit in task.exit_criteria:
        entry = dataclasses.asdict(crit)
        entry.pop("line", None)
        if not entry.get("env"):
            entry.pop("env", None)  # absent, so plans written before ``env`` keep their hash
        criteria.append(entry)
    doc = {
        "id": task.id,
        "title": task.title,
        "type": task.type,
        "cwd": task.cwd,
        "description": task.description,
        "depends_on": list(task.depends_on),
        "exit_criteria": criteria,
        "timeout": task.timeout,
        "max_retries": task.max_retries,
    }
    if task.env:  # the environment can change a verdict, so it is part of the task
        doc["env"] = [list(pair) for pair in task.env]
    return doc


def _digest(doc: object) -> str:
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_fingerprint(plan: Plan) -> tuple[str, dict[str, str]]:
    """(hash of the whole plan, hash of each task) over content, ignoring comments and layout.

    Paths enter as the plan writes them (relative to the workspace), so a project
    that moves to another folder keeps its ledger and its verified tasks.
    """
    per_task = {task.id: _digest(_task_doc(plan, task)) for task in plan.tasks}
    whole = {
        "goal": plan.goal,
        "allow_commits": plan.allow_commits,
        "tasks": [per_task[task.id] for task in plan.tasks],
    }
    return _digest(whole), per_task
