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
    from dispatch_kit.render import render_template

    return render_template("report", report_vars(status))
