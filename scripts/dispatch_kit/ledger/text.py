"""The completion report, from the ledger's status document, for terminals and for people.

One data source (``Ledger.status``) feeds three views: JSON for machines, a
compact text table for a terminal, and the Markdown ``report`` template the
orchestrating agent hands back to its user.
"""

from __future__ import annotations

from dispatch_kit.durations import format_duration
from dispatch_kit.ledger import first_line

_MARKS = {"verified": "ok", "failed": "FAILED", "skipped": "skipped", "pending": "pending"}


def task_note(task: dict) -> str:
    """Why a task is not verified, in one line (empty for a verified task)."""
    if task["status"] == "skipped":
        return f"skipped: depends on {task['skipped_because']}, which failed"
    if task["status"] == "failed":
        return first_line(task.get("error"))
    if task["status"] == "pending":
        if task["holder"]:
            what = "dispatched to" if task["state"] == "dispatched" else "claimed by"
            return f"attempt {task['attempt']}/{task['max_attempts']} {what} {task['holder']}"
        if task["attempt"] > 1:
            return f"attempt {task['attempt']}/{task['max_attempts']} ready: " + first_line(
                task.get("error"), 100
            )
        waiting = task.get("waiting_on", task["depends_on"])
        return "waiting for " + ", ".join(waiting) if waiting else "ready"
    return ""


def headline(status: dict) -> str:
    counts = status["counts"]
    total = sum(counts.values())
    took = format_duration(status["duration"]) if status["duration"] is not None else "-"
    if status["state"] == "complete":
        return f"Mission complete: {total} of {total} tasks verified in {took}"
    parts = [f"{counts['verified']} verified"]
    parts += [f"{counts[k]} {k}" for k in ("failed", "skipped", "pending") if counts[k]]
    word = "in progress" if status["state"] == "in_progress" else "finished with failures"
    return f"Mission {word}: {', '.join(parts)} of {total} tasks ({took})"


def status_text(status: dict) -> str:
    """A terminal table: one line per task, then where the output is and how long it took."""
    lines = [headline(status), f"Goal: {status['goal']}"]
    width = max((len(t["id"]) for t in status["tasks"]), default=4)
    for task in status["tasks"]:
        tries = f"{task['attempts']}/{task['max_attempts']}"
        took = format_duration(task["duration"]) if task["attempts"] else "-"
        note = task_note(task)
        lines.append(
            f"  {_MARKS[task['status']]:<8} {task['id']:<{width}}  attempts {tries:<5} "
            f"{took:>8}  {note}".rstrip()
        )
    lines.append(f"Output: {status['workspace']}")
    lines.append(f"Duration: {format_duration(status['duration'])}")
    return "\n".join(lines) + "\n"


def report_vars(status: dict) -> dict:
    """Variables of ``templates/report.md.j2``."""
    tasks = []
    for task in status["tasks"]:
        status_word = task["status"] if task["status"] != "pending" else "pending"
        tasks.append({
            "id": task["id"],
            "title": task["title"],
            "status": status_word,
            "attempts": task["attempts"],
            "duration": task["duration"],
            "note": task_note(task),
        })
    return {
        "goal": status["goal"],
        "tasks": tasks,
        "output": status["workspace"],
        "duration": status["duration"] or 0.0,
    }


def status_markdown(status: dict) -> str:
    """The Markdown completion report through the pack's ``report`` template."""
    from dispatch_kit.render.templates import render_template

    return render_template("report", report_vars(status))


# One class per state a reader tells apart at a glance; running covers claimed and dispatched.
_MERMAID_CLASSES = {
    "verified": "fill:#d3f9d8,stroke:#2b8a3e",
    "failed": "fill:#ffe3e3,stroke:#c92a2a",
    "skipped": "fill:#f1f3f5,stroke:#868e96,stroke-dasharray:4 3",
    "running": "fill:#fff3bf,stroke:#e67700",
    "ready": "fill:#e7f5ff,stroke:#1971c2",
    "waiting": "fill:#ffffff,stroke:#868e96",
}


def _mermaid_text(text: str) -> str:
    """Label text Mermaid shows as written (its entity codes for the quote and brackets)."""
    for raw, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


def status_mermaid(status: dict) -> str:
    """The plan's graph with each task's state, as a Mermaid flowchart.

    For a README, a PR comment or the orchestrator's reply (wrap it in a
    ```` ```mermaid ```` fence). Nodes are numbered, so any task id is safe;
    a running task names its agent when a session hook recorded one.
    """
    verified = {t["id"] for t in status["tasks"] if t["state"] == "verified"}
    node = {task["id"]: f"t{n}" for n, task in enumerate(status["tasks"], 1)}
    lines = ["flowchart LR"]
    used: set[str] = set()
    for task in status["tasks"]:
        state = task["state"]
        if state in ("claimed", "dispatched"):
            kind = "running"
        elif state == "ready":
            waiting = any(dep not in verified for dep in task["depends_on"])
            kind = "waiting" if waiting else "ready"
        else:
            kind = state
        used.add(kind)
        detail = kind
        if kind == "running":
            detail = f"{state} {task['attempt']}/{task['max_attempts']}"
            if task.get("agent"):
                detail += f"<br/>agent {task['agent']}"
        elif kind == "failed":
            detail = f"failed at attempt {task['attempt']}/{task['max_attempts']}"
        elif kind == "verified" and task["attempts"] > 1:
            detail = f"verified on attempt {task['attempts']}"
        label = f"{_mermaid_text(task['id'])}<br/>{detail}"
        lines.append(f'  {node[task["id"]]}["{label}"]:::{kind}')
    for task in status["tasks"]:
        for dep in task["depends_on"]:
            lines.append(f"  {node[dep]} --> {node[task['id']]}")
    for kind, style in _MERMAID_CLASSES.items():
        if kind in used:
            lines.append(f"  classDef {kind} {style}")
    return "\n".join(lines) + "\n"
