"""Progress output of a run: a line per event for people, JSON lines for machines.

Both the loop and the detached executor report through this, so a cron log and a CI job
read the same events whichever mode produced them.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from dispatch_kit.durations import format_duration
from dispatch_kit.ledger import RecordResult, first_line


class Progress:
    """One line per event with the elapsed time; JSON lines for machines; nothing when quiet."""

    def __init__(self, mode: str = "text", stream: IO[str] | None = None) -> None:
        self.mode = mode
        self.stream = stream
        self.t0 = time.monotonic()
        self.lines: list[dict] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def emit(self, event: str, task: str | None, message: str, **fields: Any) -> None:
        record = {"t": round(self.elapsed(), 3), "event": event, "task": task, **fields}
        self.lines.append(record)
        if self.mode == "quiet":
            return
        if self.mode == "jsonl":
            out = self.stream or sys.stdout
            out.write(json.dumps(record, default=str) + "\n")
        else:
            out = self.stream or sys.stderr
            out.write(f"[{format_duration(self.elapsed()):>7}] {message}\n")
        out.flush()


def emit_record(progress: Progress, result: RecordResult, took: float | None = None) -> None:
    """Say what a verdict did (and which dependents it skipped) as progress events."""
    tid = result.task_id
    if result.outcome == "verified":
        when = f" in {format_duration(took)}" if took is not None else ""
        progress.emit("verified", tid, f"verified {tid} (attempt {result.attempt}/"
                      f"{result.max_attempts}){when}", attempt=result.attempt)
    elif result.outcome == "retry":
        # Attempts are numbered as the ledger and the retry addendum number them: the
        # line names the attempt that runs next, N of M = 1 + max_retries.
        n, total = result.attempt, result.max_attempts - 1
        progress.emit("retrying", tid, f"retrying {tid}: attempt {n + 1}/"
                      f"{result.max_attempts} next: {first_line(result.error, 100)}",
                      retry=n, max_retries=total, attempt=n + 1,
                      max_attempts=result.max_attempts, error=first_line(result.error))
    elif result.outcome == "failed":
        progress.emit("failed", tid, f"failed {tid} after {result.attempt} attempts: "
                      f"{first_line(result.error, 100)}", attempts=result.attempt,
                      error=first_line(result.error))
        for dep in result.skipped:
            progress.emit("skipped", dep, f"skipped {dep} (depends on {tid})",
                          because=tid)
