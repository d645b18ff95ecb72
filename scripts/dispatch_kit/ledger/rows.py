"""What the ledger hands back: frozen rows and the results of its transactions.

Callers (the CLI, the runner, a skill's shell loop) only ever see these values, never
sqlite rows, so the storage can change without touching them. Each result knows how
to say itself in one line because the CLI and the runner print the same sentences.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatch_kit.procs.groups import hostname, pid_alive


@dataclass(frozen=True)
class Mission:
    id: str
    plan_path: str
    plan_hash: str
    max_tasks: int
    goal: str
    workspace: str
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class TaskRow:
    id: str
    seq: int
    title: str
    type: str
    cwd: str
    timeout: float
    max_retries: int
    state: str
    attempt: int
    last_error: str | None
    last_check: str | None
    skipped_because: str | None
    started_at: float | None
    finished_at: float | None

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retries

    def check_entry(self) -> dict | None:
        """The checker's entry for the last failed attempt (what the retry prompt quotes)."""
        return json.loads(self.last_check) if self.last_check else None


@dataclass(frozen=True)
class ClaimRow:
    task_id: str
    state: str
    attempt: int
    attempt_id: int
    holder: str
    holder_pid: int | None
    holder_start: str | None
    host: str
    claimed_at: float
    lease_expires: float
    pid: int | None
    pid_start: str | None
    dispatched_at: float | None
    log_path: str | None
    timeout: float

    def here(self) -> bool:
        return self.host == hostname()

    def worker_alive(self) -> bool | None:
        """True/False when the worker pid is known and on this host; None when nobody can tell."""
        if self.pid is None or not self.here():
            return None
        return pid_alive(self.pid, self.pid_start)

    def holder_alive(self) -> bool | None:
        if self.holder_pid is None or not self.here():
            return None
        return pid_alive(self.holder_pid, self.holder_start)


@dataclass(frozen=True)
class Worker:
    """A worker process as the ledger records it, so a sweep can tell whether it still runs."""

    pid: int | None = None
    pid_start: str | None = None
    log_path: str | None = None
    prompt_path: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    task_id: str
    reason: str = ""  # "" when ok; "held", "blocked" or the task's state otherwise
    holder: str | None = None
    lease_expires: float | None = None
    attempt: int = 0
    attempt_id: int = 0
    max_attempts: int = 0
    blockers: tuple[tuple[str, str], ...] = ()
    task: TaskRow | None = None  # the task as claimed (claim_next), saving a read after it

    def message(self) -> str:
        if self.ok:
            return (
                f"claimed {self.task_id} (attempt {self.attempt}/{self.max_attempts}) "
                f"until {iso(self.lease_expires)}"
            )
        if self.reason == "held":
            hint = ""
            if self.lease_expires is not None and self.lease_expires < time.time():
                hint = " (lease expired: `dispatch-kit ledger sweep` frees it)"
            return (
                f"{self.task_id}: held by {self.holder} until {iso(self.lease_expires)}{hint}"
            )
        if self.reason == "blocked":
            waits = ", ".join(f"{dep} ({state})" for dep, state in self.blockers)
            return f"{self.task_id}: blocked, waiting for {waits}"
        return f"{self.task_id}: already {self.reason}"


@dataclass(frozen=True)
class RecordResult:
    task_id: str
    outcome: str  # verified | retry | failed | stale (nothing done) | already-<state>
    attempt: int  # the attempt the verdict was about
    max_attempts: int
    error: str = ""
    skipped: tuple[str, ...] = ()

    def message(self) -> str:
        if self.outcome == "verified":
            return f"verified {self.task_id} (attempt {self.attempt}/{self.max_attempts})"
        if self.outcome == "retry":
            return (
                f"retry {self.task_id}: attempt {self.attempt}/{self.max_attempts} failed, "
                f"attempt {self.attempt + 1} is ready: {first_line(self.error)}"
            )
        if self.outcome == "failed":
            tail = f"; skipped {', '.join(self.skipped)}" if self.skipped else ""
            return (
                f"failed {self.task_id} after {self.attempt} attempts: "
                f"{first_line(self.error)}{tail}"
            )
        if self.outcome == "stale":
            return f"{self.task_id}: that attempt was already settled; nothing recorded"
        return f"{self.task_id}: {self.outcome.replace('-', ' ')}; nothing recorded"


@dataclass(frozen=True)
class SweepAction:
    task_id: str
    action: str  # released | collected | adopted | left
    reason: str
    result: RecordResult | None = None


@dataclass
class InitResult:
    mission: str
    action: str  # created | unchanged | replaced
    tasks: int
    kept: list[str] = field(default_factory=list)
    dropped_claims: list[str] = field(default_factory=list)


def mapping(row: Any) -> dict[str, Any]:
    """A result row (``sqlite3.Row`` or the PostgreSQL backend's) as a plain dict, built in
    one pass over its values rather than one lookup by name per column: reports read every
    row of a mission, and a runner reads a task row on every claim."""
    return dict(zip(row.keys(), row, strict=True))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
