"""The dispatch ledger: mission state in SQLite, so no orchestrator keeps it only in memory.

Agents lose their context (compaction, a crash, a cron run ending) and then
dispatch the same work twice or leave claims "in progress" forever. The ledger
is the one place the state lives: each change is a single ``BEGIN IMMEDIATE``
transaction (so two executors racing for one task cannot both win), the
database runs in WAL mode with a busy timeout (so racing processes queue
instead of failing), and every change appends a row to ``events``, which
triggers make append-only.

Task states::

    ready --claim--> claimed --dispatch--> dispatched --record(pass)--> verified
      ^                 |                      |
      |   release/stale |   record(fail), or   |--record(fail, last attempt)--> failed
      +-----------------+---- stale + check ---+        (ready dependents -> skipped)

``attempt`` is the number of the current (or next) attempt, 1-based; a task
gets ``1 + max_retries`` attempts. A claim freed before its worker started
does not use up an attempt; one freed after dispatch does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dispatch_kit.errors import InputError
from dispatch_kit.plan_model import Plan
from dispatch_kit.procs import hostname, pid_alive

SCHEMA_VERSION = 1
DEFAULT_DB = Path(".dispatch") / "ledger.db"
ENV_DB = "DISPATCH_KIT_LEDGER"
STATES = ("ready", "claimed", "dispatched", "verified", "failed", "skipped")
IN_FLIGHT = ("claimed", "dispatched")
TERMINAL = ("verified", "failed", "skipped")
ERROR_LIMIT = 4000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS missions (
    id          TEXT PRIMARY KEY,
    plan_path   TEXT NOT NULL,
    plan_hash   TEXT NOT NULL,
    max_tasks   INTEGER NOT NULL,
    goal        TEXT NOT NULL,
    workspace   TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    mission_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    title           TEXT NOT NULL,
    type            TEXT NOT NULL,
    cwd             TEXT NOT NULL,
    task_hash       TEXT NOT NULL,
    timeout         REAL NOT NULL,
    max_retries     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'ready'
                    CHECK (state IN ('ready','claimed','dispatched','verified','failed','skipped')),
    attempt         INTEGER NOT NULL DEFAULT 1,
    last_error      TEXT,
    last_check      TEXT,
    skipped_because TEXT,
    started_at      REAL,
    finished_at     REAL,
    updated_at      REAL NOT NULL,
    PRIMARY KEY (mission_id, id)
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (mission_id, state, seq);
CREATE TABLE IF NOT EXISTS deps (
    mission_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    dep_id     TEXT NOT NULL,
    PRIMARY KEY (mission_id, task_id, dep_id)
);
CREATE INDEX IF NOT EXISTS deps_by_dep ON deps (mission_id, dep_id);
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id    TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    number        INTEGER NOT NULL,
    holder        TEXT NOT NULL,
    host          TEXT,
    claimed_at    REAL NOT NULL,
    dispatched_at REAL,
    ended_at      REAL,
    outcome       TEXT CHECK (outcome IS NULL OR outcome IN
                  ('verified','failed','lost','released','interrupted')),
    pid           INTEGER,
    exit_code     INTEGER,
    timed_out     INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    log_path      TEXT,
    prompt_path   TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts (mission_id, task_id, number);
CREATE TABLE IF NOT EXISTS claims (
    mission_id    TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    attempt_id    INTEGER NOT NULL,
    holder        TEXT NOT NULL,
    holder_pid    INTEGER,
    holder_start  TEXT,
    host          TEXT NOT NULL,
    claimed_at    REAL NOT NULL,
    lease_expires REAL NOT NULL,
    pid           INTEGER,
    pid_start     TEXT,
    PRIMARY KEY (mission_id, task_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL NOT NULL,
    mission_id TEXT NOT NULL,
    task_id    TEXT,
    kind       TEXT NOT NULL,
    attempt    INTEGER,
    actor      TEXT,
    detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_task ON events (mission_id, task_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
"""


# --------------------------------------------------------------------------- values


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


# --------------------------------------------------------------------------- helpers


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
        doc = dataclasses.asdict(crit)
        doc.pop("line", None)
        criteria.append(doc)
    return {
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


def summarize_check(entry: dict, note: str | None = None) -> str:
    """The error context a retry prompt needs, from one task entry of the check JSON."""
    lines = [note] if note else []
    for crit in entry.get("criteria") or []:
        if crit.get("verdict") == "pass":
            continue
        index = crit.get("index")
        number = index + 1 if isinstance(index, int) else "?"
        head = f"criterion {number} `{crit.get('criterion', '')}`"
        head += f" {crit.get('verdict', 'fail')}"
        message = str(crit.get("message") or "")
        if crit.get("exit_code") not in (None, 0) and "exit" not in message:
            head += f" (exit {crit.get('exit_code')})"
        if crit.get("message"):
            head += f": {crit['message']}"
        lines.append(head)
        for stream in ("stderr_tail", "stdout_tail"):
            tail = (crit.get(stream) or "").strip()
            if tail:
                lines.append(f"  {stream.split('_')[0]}: " + " | ".join(tail.splitlines()[-3:]))
    if not lines:
        lines.append("exit criteria not met")
    text = "\n".join(lines)
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def default_db_for(plan: Plan) -> Path:
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return Path(plan.workspace) / DEFAULT_DB


def find_db(start: Path | None = None) -> Path:
    """``$DISPATCH_KIT_LEDGER``, else ``.dispatch/ledger.db`` in the current folder or a parent."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DB
        if candidate.is_file():
            return candidate
    raise InputError(
        "no ledger found in this folder or its parents; pass --plan PLAN or --db FILE (or set "
        f"{ENV_DB}), or create one with `dispatch-kit ledger init PLAN`",
        path=str(here / DEFAULT_DB),
    )


# --------------------------------------------------------------------------- the ledger


class Ledger:
    """One open ledger database. Methods are transactions; none holds a lock across calls."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False, busy_timeout: float = 60.0) -> Ledger:
        path = Path(path)
        if path.is_dir():
            raise InputError("is a folder, not a ledger database file", path=str(path))
        if not create and not path.exists():
            raise InputError(
                "no ledger here; run `dispatch-kit ledger init PLAN` first (or pass --db)",
                path=str(path),
            )
        try:
            if create:
                fresh = not path.exists()
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.parent.name == ".dispatch" and not (path.parent / ".gitignore").exists():
                    (path.parent / ".gitignore").write_text("# dispatch-kit run state\n*\n")
                conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
                if fresh:
                    conn.execute("PRAGMA journal_mode=WAL")
            else:
                uri = path.resolve().as_uri() + "?mode=rw"
                conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            ledger = cls(path, conn)
            if create:
                with ledger._tx() as db:
                    for statement in _split_sql(_SCHEMA):
                        db.execute(statement)
                    db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            ledger._check_schema()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a usable dispatch-kit ledger ({exc})", path=str(path)) from None
        except OSError as exc:
            raise InputError(f"cannot open ledger: {exc.strerror or exc}", path=str(path)) from None
        return ledger

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None:
            raise InputError("not a dispatch-kit ledger (no schema version)", path=str(self.path))
        if int(row[0]) != SCHEMA_VERSION:
            raise InputError(
                f"ledger schema version {row[0]} is not {SCHEMA_VERSION}; "
                "this dispatch-kit cannot read it",
                path=str(self.path),
            )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the lock is taken up front, so racers queue at BEGIN."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        mission: str,
        task: str | None,
        kind: str,
        *,
        attempt: int | None = None,
        actor: str | None = None,
        at: float | None = None,
        **detail: object,
    ) -> None:
        db.execute(
            "INSERT INTO events (at, mission_id, task_id, kind, attempt, actor, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                at if at is not None else time.time(),
                mission,
                task,
                kind,
                attempt,
                actor,
                json.dumps({k: v for k, v in detail.items() if v is not None}, default=str),
            ),
        )

    # -- missions ------------------------------------------------------------

    def missions(self) -> list[Mission]:
        rows = self.conn.execute(
            "SELECT id, plan_path, plan_hash, max_tasks, goal, workspace, created_at, started_at, "
            "finished_at FROM missions ORDER BY created_at"
        ).fetchall()
        return [Mission(**dict(row)) for row in rows]

    def mission(self, mission_id: str | None = None) -> Mission:
        """The named mission, or the only one; several without a name is an input error."""
        missions = self.missions()
        if mission_id is not None:
            for mission in missions:
                if mission.id == mission_id:
                    return mission
            known = ", ".join(m.id for m in missions) or "none"
            raise InputError(
                f"no mission {mission_id!r} in this ledger (missions: {known})",
                path=str(self.path),
            )
        if len(missions) == 1:
            return missions[0]
        if not missions:
            raise InputError(
                "the ledger holds no mission; run `dispatch-kit ledger init PLAN`",
                path=str(self.path),
            )
        names = ", ".join(m.id for m in missions)
        raise InputError(
            f"the ledger holds {len(missions)} missions ({names}); pass --mission",
            path=str(self.path),
        )

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
        now = time.time()
        with self._tx() as db:
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
                    path=str(self.path),
                )
            old: dict[str, sqlite3.Row] = {}
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
                    "INSERT OR IGNORE INTO deps (mission_id, task_id, dep_id) VALUES (?, ?, ?)",
                    [(mid, task.id, dep) for dep in task.depends_on],
                )
            if existing is None:
                self._event(db, mid, None, "init", actor=actor, at=now, plan=plan_path,
                            plan_hash=plan_hash, tasks=len(plan.tasks))
                return InitResult(mid, "created", len(plan.tasks))
            self._event(db, mid, None, "reinit", actor=actor, at=now, plan=plan_path,
                        plan_hash=plan_hash, old_hash=existing["plan_hash"], kept=kept,
                        dropped_claims=dropped)
            self._finish_if_done(db, mid, now)
            return InitResult(mid, "replaced", len(plan.tasks), kept, dropped)

    def reset_mission(self, mission_id: str, *, actor: str | None = None) -> None:
        """Start the mission over: every task ready at attempt 1 (history stays in events)."""
        now = time.time()
        with self._tx() as db:
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
            self._event(db, mission_id, None, "reset", actor=actor, at=now)

    # -- reading -------------------------------------------------------------

    _TASK_COLS = (
        "id, seq, title, type, cwd, timeout, max_retries, state, attempt, last_error, "
        "last_check, skipped_because, started_at, finished_at"
    )

    def tasks(self, mission_id: str) -> list[TaskRow]:
        rows = self.conn.execute(
            f"SELECT {self._TASK_COLS} FROM tasks WHERE mission_id = ? ORDER BY seq",
            (mission_id,),
        ).fetchall()
        return [TaskRow(**dict(row)) for row in rows]

    def task(self, mission_id: str, task_id: str) -> TaskRow:
        row = self.conn.execute(
            f"SELECT {self._TASK_COLS} FROM tasks WHERE mission_id = ? AND id = ?",
            (mission_id, task_id),
        ).fetchone()
        if row is None:
            raise self._unknown(mission_id, task_id)
        return TaskRow(**dict(row))

    def _unknown(self, mission_id: str, task_id: str) -> InputError:
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM tasks WHERE mission_id = ? ORDER BY seq LIMIT 12", (mission_id,)
        )]
        return InputError(
            f"unknown task {task_id!r} in mission {mission_id!r} (tasks: {', '.join(ids)})",
            path=str(self.path),
        )

    def in_flight(self, mission_id: str) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE mission_id = ? AND state IN ('claimed','dispatched')",
            (mission_id,),
        ).fetchone()[0]

    def next_ready(
        self, mission_id: str, *, wip: int | None = None, limit: int | None = None
    ) -> list[TaskRow]:
        """Ready tasks whose dependencies are all verified, in plan order.

        With ``wip``, at most ``wip`` minus the tasks already claimed or
        dispatched: the backpressure that keeps a batch from flooding.
        """
        db = self.conn  # one statement when wip is None, so no snapshot is needed
        with self._read() if wip is not None else contextlib.nullcontext():
            room = -1 if limit is None else max(0, limit)
            if wip is not None:
                inflight = db.execute(
                    "SELECT COUNT(*) FROM tasks WHERE mission_id = ? "
                    "AND state IN ('claimed','dispatched')",
                    (mission_id,),
                ).fetchone()[0]
                free = max(0, wip - inflight)
                room = free if room < 0 else min(room, free)
            if room == 0:
                return []
            rows = db.execute(
                f"SELECT {self._TASK_COLS} FROM tasks t WHERE t.mission_id = ? "
                "AND t.state = 'ready' AND NOT EXISTS (SELECT 1 FROM deps d JOIN tasks u "
                "ON u.mission_id = d.mission_id AND u.id = d.dep_id "
                "WHERE d.mission_id = t.mission_id AND d.task_id = t.id "
                "AND u.state != 'verified') ORDER BY t.seq LIMIT ?",
                (mission_id, room),
            ).fetchall()
        return [TaskRow(**dict(row)) for row in rows]

    _CLAIM_SQL = (
        "SELECT c.task_id, t.state, t.attempt, c.attempt_id, c.holder, c.holder_pid, "
        "c.holder_start, c.host, c.claimed_at, c.lease_expires, c.pid, c.pid_start, "
        "a.dispatched_at, a.log_path, t.timeout FROM claims c "
        "JOIN tasks t ON t.mission_id = c.mission_id AND t.id = c.task_id "
        "JOIN attempts a ON a.id = c.attempt_id WHERE c.mission_id = ?"
    )

    def claims(self, mission_id: str) -> list[ClaimRow]:
        rows = self.conn.execute(self._CLAIM_SQL + " ORDER BY t.seq", (mission_id,)).fetchall()
        return [ClaimRow(**dict(row)) for row in rows]

    def claim_of(self, mission_id: str, task_id: str) -> ClaimRow | None:
        row = self.conn.execute(
            self._CLAIM_SQL + " AND c.task_id = ?", (mission_id, task_id)
        ).fetchone()
        return ClaimRow(**dict(row)) if row else None

    # -- state changes -------------------------------------------------------

    def claim(
        self,
        mission_id: str,
        task_id: str,
        holder: str,
        lease: float,
        *,
        holder_pid: int | None = None,
        holder_start: str | None = None,
        worker: Worker | None = None,
        expect_attempt: int | None = None,
        now: float | None = None,
    ) -> ClaimResult:
        """ready → claimed, atomically; otherwise say who holds it or what it waits for.

        With ``worker`` (a process already started but held back until this
        commits) the task goes straight to dispatched in the same transaction;
        ``expect_attempt`` makes the claim fail if the attempt moved on meanwhile.
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT state, attempt, max_retries FROM tasks WHERE mission_id = ? AND id = ?",
                (mission_id, task_id),
            ).fetchone()
            if row is None:
                raise self._unknown(mission_id, task_id)
            max_attempts = 1 + row["max_retries"]
            if row["state"] in IN_FLIGHT:
                held = db.execute(
                    "SELECT holder, lease_expires FROM claims WHERE mission_id = ? AND task_id = ?",
                    (mission_id, task_id),
                ).fetchone()
                return ClaimResult(
                    False, task_id, "held",
                    holder=held["holder"] if held else "?",
                    lease_expires=held["lease_expires"] if held else None,
                    attempt=row["attempt"], max_attempts=max_attempts,
                )
            if row["state"] != "ready":
                return ClaimResult(False, task_id, row["state"], attempt=row["attempt"],
                                   max_attempts=max_attempts)
            if expect_attempt is not None and row["attempt"] != expect_attempt:
                return ClaimResult(False, task_id, f"at attempt {row['attempt']}",
                                   attempt=row["attempt"], max_attempts=max_attempts)
            blockers = db.execute(
                "SELECT u.id, u.state FROM deps d JOIN tasks u ON u.mission_id = d.mission_id "
                "AND u.id = d.dep_id WHERE d.mission_id = ? AND d.task_id = ? "
                "AND u.state != 'verified' ORDER BY u.seq",
                (mission_id, task_id),
            ).fetchall()
            if blockers:
                return ClaimResult(
                    False, task_id, "blocked", attempt=row["attempt"], max_attempts=max_attempts,
                    blockers=tuple((b["id"], b["state"]) for b in blockers),
                )
            host = hostname()
            w = worker or Worker()
            cur = db.execute(
                "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
                "dispatched_at, pid, log_path, prompt_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mission_id, task_id, row["attempt"], holder, host, now,
                 now if worker else None, w.pid, w.log_path, w.prompt_path),
            )
            attempt_id = int(cur.lastrowid or 0)
            expires = now + lease
            db.execute(
                "INSERT INTO claims (mission_id, task_id, attempt_id, holder, holder_pid, "
                "holder_start, host, claimed_at, lease_expires, pid, pid_start) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mission_id, task_id, attempt_id, holder, holder_pid, holder_start, host, now,
                 expires, w.pid, w.pid_start),
            )
            db.execute(
                "UPDATE tasks SET state = ?, started_at = COALESCE(started_at, ?), "
                "updated_at = ? WHERE mission_id = ? AND id = ?",
                ("dispatched" if worker else "claimed", now, now, mission_id, task_id),
            )
            db.execute(
                "UPDATE missions SET started_at = ?, updated_at = ? "
                "WHERE id = ? AND started_at IS NULL",
                (now, now, mission_id),
            )
            self._event(db, mission_id, task_id, "claimed", attempt=row["attempt"], actor=holder,
                        at=now, lease_expires=iso(expires), holder_pid=holder_pid, host=host)
            if worker:
                self._event(db, mission_id, task_id, "dispatched", attempt=row["attempt"],
                            actor=holder, at=now, pid=w.pid, log=w.log_path,
                            lease_expires=iso(expires))
        return ClaimResult(True, task_id, holder=holder, lease_expires=expires,
                           attempt=row["attempt"], attempt_id=attempt_id,
                           max_attempts=max_attempts)

    def mark_dispatched(
        self,
        mission_id: str,
        task_id: str,
        holder: str,
        *,
        pid: int | None = None,
        pid_start: str | None = None,
        lease: float | None = None,
        log_path: str | None = None,
        prompt_path: str | None = None,
        now: float | None = None,
        fetch: bool = True,
    ) -> ClaimRow | None:
        """claimed → dispatched: the worker started (pid when known, so sweeps can watch it).

        Returns the updated claim (None with ``fetch=False``, which saves a query
        on the runner's hot path)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            claim = db.execute(
                "SELECT c.attempt_id, c.holder, c.lease_expires, t.state, t.attempt FROM claims c "
                "JOIN tasks t ON t.mission_id = c.mission_id AND t.id = c.task_id "
                "WHERE c.mission_id = ? AND c.task_id = ?",
                (mission_id, task_id),
            ).fetchone()
            if claim is None:
                state = self.task(mission_id, task_id).state
                raise InputError(
                    f"task {task_id!r} is {state}, not claimed; claim it before dispatching",
                    path=str(self.path),
                )
            if claim["holder"] != holder:
                raise InputError(
                    f"task {task_id!r} is held by {claim['holder']}, not {holder}",
                    path=str(self.path),
                )
            expires = now + lease if lease is not None else claim["lease_expires"]
            db.execute(
                "UPDATE claims SET pid = COALESCE(?, pid), pid_start = COALESCE(?, pid_start), "
                "lease_expires = ? WHERE mission_id = ? AND task_id = ?",
                (pid, pid_start, expires, mission_id, task_id),
            )
            db.execute(
                "UPDATE attempts SET dispatched_at = COALESCE(dispatched_at, ?), "
                "pid = COALESCE(?, pid), log_path = COALESCE(?, log_path), "
                "prompt_path = COALESCE(?, prompt_path) WHERE id = ?",
                (now, pid, log_path, prompt_path, claim["attempt_id"]),
            )
            db.execute(
                "UPDATE tasks SET state = 'dispatched', updated_at = ? "
                "WHERE mission_id = ? AND id = ?",
                (now, mission_id, task_id),
            )
            if claim["state"] != "dispatched":
                self._event(db, mission_id, task_id, "dispatched", attempt=claim["attempt"],
                            actor=holder, at=now, pid=pid, log=log_path,
                            lease_expires=iso(expires))
        return self.claim_of(mission_id, task_id) if fetch else None

    def renew(self, mission_id: str, holder: str, expiries: dict[str, float]) -> None:
        """Push the leases of claims ``holder`` still works on (one transaction, no event)."""
        if not expiries:
            return
        with self._tx() as db:
            db.executemany(
                "UPDATE claims SET lease_expires = MAX(lease_expires, ?) "
                "WHERE mission_id = ? AND task_id = ? AND holder = ?",
                [(expires, mission_id, task_id, holder) for task_id, expires in expiries.items()],
            )

    def adopt(self, mission_id: str, task_id: str, attempt_id: int, holder: str, *,
              holder_pid: int | None, holder_start: str | None, reason: str) -> bool:
        """Take over a live worker whose holder died (a killed runner): keep its attempt."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE claims SET holder = ?, holder_pid = ?, holder_start = ?, host = ? "
                "WHERE mission_id = ? AND task_id = ? AND attempt_id = ?",
                (holder, holder_pid, holder_start, hostname(), mission_id, task_id, attempt_id),
            )
            if cur.rowcount != 1:
                return False
            db.execute("UPDATE attempts SET holder = ? WHERE id = ?", (holder, attempt_id))
            number = db.execute("SELECT number FROM attempts WHERE id = ?",
                                (attempt_id,)).fetchone()[0]
            self._event(db, mission_id, task_id, "adopted", attempt=number, actor=holder,
                        reason=reason)
        return True

    def release(
        self,
        mission_id: str,
        task_id: str,
        *,
        reason: str,
        holder: str | None = None,
        expect_attempt: int | None = None,
        outcome: str = "released",
        actor: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Give a claim back without using up an attempt (its worker never ran, or was stopped
        by the user rather than failing)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            claim = db.execute(
                "SELECT attempt_id, holder FROM claims WHERE mission_id = ? AND task_id = ?",
                (mission_id, task_id),
            ).fetchone()
            if claim is None:
                self.task(mission_id, task_id)  # unknown task → InputError
                return False
            if expect_attempt is not None and claim["attempt_id"] != expect_attempt:
                return False
            if holder is not None and claim["holder"] != holder:
                raise InputError(
                    f"task {task_id!r} is held by {claim['holder']}, not {holder}",
                    path=str(self.path),
                )
            number = db.execute(
                "SELECT number FROM attempts WHERE id = ?", (claim["attempt_id"],)
            ).fetchone()[0]
            db.execute(
                "UPDATE attempts SET outcome = ?, ended_at = ?, error = ? WHERE id = ?",
                (outcome, now, reason, claim["attempt_id"]),
            )
            db.execute("DELETE FROM claims WHERE mission_id = ? AND task_id = ?",
                       (mission_id, task_id))
            db.execute(
                "UPDATE tasks SET state = 'ready', updated_at = ? WHERE mission_id = ? AND id = ?",
                (now, mission_id, task_id),
            )
            self._event(db, mission_id, task_id, outcome, attempt=number,
                        actor=actor or claim["holder"], at=now, reason=reason)
        return True

    def record(
        self,
        mission_id: str,
        task_id: str,
        entry: dict,
        *,
        note: str | None = None,
        exit_code: int | None = None,
        timed_out: bool = False,
        expect_attempt: int | None = None,
        lost: bool = False,
        actor: str | None = None,
        now: float | None = None,
    ) -> RecordResult:
        """Apply the checker's verdict for one task (one element of the check JSON's ``tasks``).

        Passed → verified. Failed → the error is stored for the retry prompt and
        the task goes back to ready at attempt + 1, or, after the last attempt,
        to failed with every ready transitive dependent skipped.
        """
        now = time.time() if now is None else now
        passed = bool(entry.get("passed"))
        if not passed and note and "note" not in entry:
            # The retry prompt is built from the stored entry: keep how the worker ended.
            entry = dict(entry, note=note, worker_timed_out=timed_out)
        with self._tx() as db:
            row = db.execute(
                "SELECT state, attempt, max_retries FROM tasks WHERE mission_id = ? AND id = ?",
                (mission_id, task_id),
            ).fetchone()
            if row is None:
                raise self._unknown(mission_id, task_id)
            attempt, max_attempts = row["attempt"], 1 + row["max_retries"]
            if row["state"] in TERMINAL:
                return RecordResult(task_id, f"already-{row['state']}", attempt, max_attempts)
            claim = db.execute(
                "SELECT attempt_id, holder FROM claims WHERE mission_id = ? AND task_id = ?",
                (mission_id, task_id),
            ).fetchone()
            if expect_attempt is not None and (claim is None or claim["attempt_id"] !=
                                               expect_attempt):
                return RecordResult(task_id, "stale", attempt, max_attempts)
            error = "" if passed else summarize_check(entry, note)
            if claim is not None:
                outcome = "verified" if passed else ("lost" if lost else "failed")
                db.execute(
                    "UPDATE attempts SET outcome = ?, ended_at = ?, exit_code = ?, "
                    "timed_out = ?, error = ?, dispatched_at = COALESCE(dispatched_at, claimed_at) "
                    "WHERE id = ?",
                    (outcome, now, exit_code, int(timed_out), error or None, claim["attempt_id"]),
                )
                db.execute("DELETE FROM claims WHERE mission_id = ? AND task_id = ?",
                           (mission_id, task_id))
            else:
                # A verdict without a claim (the skill checked before claiming, or a late
                # result after a sweep): keep the history complete with a zero-length attempt.
                db.execute(
                    "INSERT INTO attempts (mission_id, task_id, number, holder, host, claimed_at, "
                    "dispatched_at, ended_at, outcome, exit_code, timed_out, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (mission_id, task_id, attempt, actor or "record", hostname(), now, now, now,
                     "verified" if passed else "failed", exit_code, int(timed_out),
                     error or None),
                )
            who = actor or (claim["holder"] if claim else None)
            skipped: list[str] = []
            if passed:
                db.execute(
                    "UPDATE tasks SET state = 'verified', last_error = NULL, finished_at = ?, "
                    "started_at = COALESCE(started_at, ?), updated_at = ? "
                    "WHERE mission_id = ? AND id = ?",
                    (now, now, now, mission_id, task_id),
                )
                self._event(db, mission_id, task_id, "verified", attempt=attempt, actor=who,
                            at=now, exit_code=exit_code, note=note)
                outcome_name = "verified"
            elif attempt < max_attempts:
                db.execute(
                    "UPDATE tasks SET state = 'ready', attempt = attempt + 1, last_error = ?, "
                    "last_check = ?, updated_at = ? WHERE mission_id = ? AND id = ?",
                    (error, json.dumps(entry), now, mission_id, task_id),
                )
                self._event(db, mission_id, task_id, "retry", attempt=attempt, actor=who, at=now,
                            error=first_line(error), exit_code=exit_code, timed_out=timed_out)
                outcome_name = "retry"
            else:
                db.execute(
                    "UPDATE tasks SET state = 'failed', last_error = ?, last_check = ?, "
                    "finished_at = ?, updated_at = ? WHERE mission_id = ? AND id = ?",
                    (error, json.dumps(entry), now, now, mission_id, task_id),
                )
                self._event(db, mission_id, task_id, "failed", attempt=attempt, actor=who, at=now,
                            error=first_line(error), exit_code=exit_code, timed_out=timed_out)
                skipped = self._skip_dependents(db, mission_id, task_id, now)
                outcome_name = "failed"
            self._finish_if_done(db, mission_id, now)
        return RecordResult(task_id, outcome_name, attempt, max_attempts, error, tuple(skipped))

    def _skip_dependents(self, db: sqlite3.Connection, mission_id: str, task_id: str,
                         now: float) -> list[str]:
        rows = db.execute(
            "WITH RECURSIVE down(id) AS ("
            " SELECT task_id FROM deps WHERE mission_id = ?1 AND dep_id = ?2"
            " UNION SELECT d.task_id FROM deps d JOIN down ON d.dep_id = down.id"
            " WHERE d.mission_id = ?1) "
            "SELECT t.id FROM tasks t JOIN down ON t.id = down.id "
            "WHERE t.mission_id = ?1 AND t.state = 'ready' ORDER BY t.seq",
            (mission_id, task_id),
        ).fetchall()
        skipped = [r[0] for r in rows]
        for dep in skipped:
            db.execute(
                "UPDATE tasks SET state = 'skipped', skipped_because = ?, finished_at = ?, "
                "updated_at = ? WHERE mission_id = ? AND id = ?",
                (task_id, now, now, mission_id, dep),
            )
            self._event(db, mission_id, dep, "skipped", at=now, because=task_id)
        return skipped

    def _finish_if_done(self, db: sqlite3.Connection, mission_id: str, now: float) -> None:
        still_open = db.execute(  # an index lookup, not a count: this runs on every verdict
            "SELECT 1 FROM tasks WHERE mission_id = ? AND state IN "
            "('ready','claimed','dispatched') LIMIT 1",
            (mission_id,),
        ).fetchone()
        if still_open is None:
            cur = db.execute(
                "UPDATE missions SET finished_at = ?, updated_at = ? "
                "WHERE id = ? AND finished_at IS NULL",
                (now, now, mission_id),
            )
            if cur.rowcount:
                self._event(db, mission_id, None, "finished", at=now)

    # -- sweeping ------------------------------------------------------------

    def stale_reason(self, claim: ClaimRow, *, now: float, stale: float | None) -> str | None:
        """Why a claim should be freed, or None while it may still be making progress.

        A lease past its expiry, or a claim held longer than ``stale``, is stale
        whoever holds it. Otherwise a holder still alive on this host is trusted
        to settle its own claim; without one, a worker pid that is gone (or a
        holder that died before starting the worker) makes the claim stale.
        """
        if now > claim.lease_expires:
            return f"lease of {claim.holder} expired at {iso(claim.lease_expires)}"
        if stale is not None and now - claim.claimed_at > stale:
            return f"held by {claim.holder} for {int(now - claim.claimed_at)}s (over --stale)"
        if claim.holder_alive():
            return None
        if claim.state == "dispatched" and claim.worker_alive() is False:
            return f"worker pid {claim.pid} on {claim.host} is gone"
        if claim.state == "claimed" and claim.holder_alive() is False:
            return f"holder {claim.holder} (pid {claim.holder_pid}) died before dispatching"
        return None

    def sweep(
        self,
        mission_id: str,
        *,
        stale: float | None = None,
        collect: Callable[[ClaimRow, str], tuple[dict, dict]] | None = None,
        skip: Callable[[ClaimRow], bool] | None = None,
        actor: str = "sweep",
        now: float | None = None,
    ) -> list[SweepAction]:
        """Free stale claims. A claim never dispatched goes back to ready for free; a
        dispatched one is collected: ``collect(claim, reason)`` stops a worker that is
        still alive, checks the criteria and returns (check entry, record options)."""
        from dispatch_kit.procs import kill_group

        now = time.time() if now is None else now
        actions: list[SweepAction] = []
        for claim in self.claims(mission_id):
            if skip is not None and skip(claim):
                continue
            reason = self.stale_reason(claim, now=now, stale=stale)
            if reason is None:
                continue
            if claim.state == "claimed":
                if self.release(mission_id, claim.task_id, reason=reason,
                                expect_attempt=claim.attempt_id, actor=actor):
                    actions.append(SweepAction(claim.task_id, "released", reason))
                continue
            if claim.worker_alive():
                kill_group(claim.pid or 0)
                reason += f"; stopped worker pid {claim.pid}"
            if collect is None:
                entry, opts = {"id": claim.task_id, "passed": False, "criteria": []}, {}
            else:
                entry, opts = collect(claim, reason)
            result = self.record(
                mission_id, claim.task_id, entry, note=opts.pop("note", None) or reason,
                expect_attempt=claim.attempt_id, lost=not entry.get("passed"), actor=actor,
                **opts,
            )
            if result.outcome != "stale":
                actions.append(SweepAction(claim.task_id, "collected", reason, result))
        return actions

    # -- reporting -----------------------------------------------------------

    def status(self, mission_id: str, *, now: float | None = None) -> dict:
        """The completion report as data: what ``ledger status`` and the runner print."""
        now = time.time() if now is None else now
        with self._read() as db:
            mission = self.mission(mission_id)
            tasks = self.tasks(mission_id)
            attempts: dict[str, list[sqlite3.Row]] = {}
            for row in db.execute(
                "SELECT * FROM attempts WHERE mission_id = ? ORDER BY id", (mission_id,)
            ):
                attempts.setdefault(row["task_id"], []).append(row)
            claims = {c.task_id: c for c in self.claims(mission_id)}
            deps: dict[str, list[str]] = {}
            for row in db.execute(
                "SELECT d.task_id, d.dep_id FROM deps d JOIN tasks t "
                "ON t.mission_id = d.mission_id AND t.id = d.dep_id "
                "WHERE d.mission_id = ? ORDER BY t.seq",
                (mission_id,),
            ):
                deps.setdefault(row[0], []).append(row[1])
        counts = {"verified": 0, "failed": 0, "skipped": 0, "pending": 0}
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
            "ledger": str(self.path),
            "state": state,
            "started_at": iso(start),
            "finished_at": iso(end),
            "duration": duration,
            "counts": counts,
            "tasks": out_tasks,
        }

    def events(self, mission_id: str, *, task_id: str | None = None) -> list[dict]:
        sql = "SELECT * FROM events WHERE mission_id = ?"
        params: tuple = (mission_id,)
        if task_id is not None:
            sql += " AND task_id = ?"
            params += (task_id,)
        rows = self.conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [dict(row) | {"detail": json.loads(row["detail"])} for row in rows]


def _split_sql(script: str) -> list[str]:
    """Statements of the schema, keeping trigger bodies whole (they contain ';')."""
    statements, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        joined = "\n".join(buf).strip()
        if joined.endswith(";") and sqlite3.complete_statement(joined):
            statements.append(joined)
            buf = []
    return statements
