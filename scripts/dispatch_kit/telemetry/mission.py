"""One process's view of a mission's trace: its workflow span, its attempts, the flush.

The runner, ``run --detach`` and ``attempt start|finish`` each open one; the
ledger holds the ids (:mod:`dispatch_kit.telemetry.store`), so every process
that touches the mission adds to the same trace:

- the mission's root is the first workflow span (a ``run``, or for a mission
  driven by the plugin workflow, a span from its first ``attempt start`` to the
  mission's end); later runs are children of it;
- an attempt's span id is chosen before its worker starts (the worker's
  ``TRACEPARENT``) and stored once the claim holds;
- :meth:`MissionTrace.flush` emits every attempt that has ended and was not
  emitted yet, whoever started it: attempts recorded by the session hooks or a
  run without tracing get a span too (from the ledger's times), as long as they
  ended after the mission's trace began.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import time
from collections.abc import Mapping, MutableMapping

from dispatch_kit.ledger import Ledger
from dispatch_kit.procs.groups import pid_alive, pid_start
from dispatch_kit.telemetry import spans, store
from dispatch_kit.telemetry.context import SpanRef, new_span_id, new_trace_id, parse_traceparent
from dispatch_kit.telemetry.setup import flush as flush_exporters
from dispatch_kit.telemetry.store import StoredSpan

# error.type values of an attempt span (low cardinality, as the conventions ask).
ATTEMPT_ERRORS = {"failed": "criteria_failed", "lost": "lost", "released": "released",
                  "interrupted": "interrupted"}


def _ns(seconds: float | None) -> int:
    return int((seconds if seconds is not None else time.time()) * 1e9)


def agent_of(worker: str | None) -> str:
    """A short agent name from a worker command: its program (``claude``, ``python3``)."""
    try:
        words = shlex.split(worker or "")
    except ValueError:
        words = (worker or "").split()
    words = [w for w in words if "=" not in w.split("/")[0]]  # skip VAR=value prefixes
    return os.path.basename(words[0]) if words else "worker"


class MissionTrace:
    """Spans of one mission from this process (see the module docstring)."""

    def __init__(self, ledger: Ledger, mission: str, *, kind: str = "run") -> None:
        self.ledger = ledger
        self.conn: sqlite3.Connection = ledger.conn
        self.mission = mission
        self.kind = kind
        self.worker: str | None = None
        self.interrupted: str | None = None
        self.run: StoredSpan | None = None
        self._pending: dict[str, tuple[int, int]] = {}
        self._attempts: dict[int, StoredSpan] = {}
        store.ensure(self.conn)
        self.root = self._root()

    # -- the mission and this process's workflow span ------------------------------------

    def _root(self) -> StoredSpan:
        found = store.get(self.conn, self.mission, "mission")
        if found is not None:
            return found
        incoming = parse_traceparent(os.environ.get("TRACEPARENT"))
        store.insert(self.conn, StoredSpan(
            self.mission, "mission", incoming.trace_id if incoming else new_trace_id(),
            new_span_id(), incoming.span_id if incoming else None,
            os.environ.get("TRACESTATE") or None, "mission", time.time_ns(), emitted=True))
        found = store.get(self.conn, self.mission, "mission")
        assert found is not None
        return found

    @property
    def tracestate(self) -> str | None:
        return self.root.tracestate

    def _ref(self, span: StoredSpan) -> SpanRef:
        return SpanRef(span.trace_id, span.span_id)

    def start_run(self, holder: str, worker: str | None = None) -> None:
        """Open this process's workflow span (the mission's root if it is the first).

        A workflow-driven mission has one such span in all, claimed by its first
        ``attempt start``; a run has one per process, and first emits the spans of
        earlier runs that were killed before they could.
        """
        self.worker = worker
        pid = os.getpid() if self.kind != "workflow" else None
        root_scope = f"run:{self.root.span_id:016x}"
        mine = StoredSpan(self.mission, root_scope, self.root.trace_id, self.root.span_id,
                          self.root.parent_id, self.tracestate, self.kind, time.time_ns(),
                          detail=holder, pid=pid, pid_start=pid_start(pid) if pid else None)
        if store.insert(self.conn, mine):
            self.run = mine
        elif self.kind != "workflow":
            span_id = new_span_id()
            mine = StoredSpan(self.mission, f"run:{span_id:016x}", self.root.trace_id, span_id,
                              self.root.span_id, self.tracestate, self.kind, time.time_ns(),
                              detail=holder, pid=pid, pid_start=mine.pid_start)
            store.insert(self.conn, mine)
            self.run = mine
        self._emit_dead_runs()

    def end_run(self) -> None:
        """Close this process's workflow span and emit whatever ended meanwhile."""
        self.flush()
        if self.run is not None and self.run.pid is not None:
            self._emit_run(self.run, time.time_ns(), self.interrupted and "interrupted",
                           self.interrupted)
        flush_exporters()

    def _emit_dead_runs(self) -> None:
        for row in store.pending(self.conn, self.mission, "run:"):
            if row.pid is None or row is self.run or (self.run and row.scope == self.run.scope):
                continue
            if pid_alive(row.pid, row.pid_start):
                continue
            self._emit_run(row, time.time_ns(), "killed",
                           "the run ended without closing its span (killed); emitted by the next")

    def _emit_run(self, row: StoredSpan, end_ns: int, error: str | None,
                  message: str | None) -> None:
        if not store.claim_emit(self.conn, self.mission, row.scope):
            return
        counts = self._counts()
        if error is None and counts.get("failed"):
            error, message = "tasks_failed", f"{counts['failed']} task(s) failed"
        attributes: dict = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": self.mission,
            "gen_ai.agent.name": self.mission,
            "dispatch_kit.mission": self.mission,
            "dispatch_kit.run.kind": row.label,
            "dispatch_kit.holder": row.detail,
        }
        attributes.update({f"dispatch_kit.tasks.{k}": v for k, v in counts.items()})
        parent = SpanRef(row.trace_id, row.parent_id) if row.parent_id else None
        spans.emit(f"invoke_workflow {self.mission}", span_id=row.span_id,
                   trace_id=row.trace_id, parent=parent, start_ns=row.start_ns, end_ns=end_ns,
                   attributes=attributes, error_type=error, message=message,
                   tracestate=row.tracestate)

    def _counts(self) -> dict[str, int]:
        counts = {"verified": 0, "failed": 0, "skipped": 0, "pending": 0}
        for state, number in self.conn.execute(
                "SELECT state, COUNT(*) FROM tasks WHERE mission_id = ? GROUP BY state",
                (self.mission,)):
            key = state if state in counts else "pending"
            counts[key] += number
        return counts

    # -- attempts ---------------------------------------------------------------------------

    def apply(self, env: MutableMapping[str, str], task_id: str) -> None:
        """Give a worker about to start the ``TRACEPARENT`` of its attempt's span."""
        span_id = new_span_id()
        self._pending[task_id] = (span_id, time.time_ns())
        env["TRACEPARENT"] = SpanRef(self.root.trace_id, span_id).traceparent
        if self.tracestate:
            env["TRACESTATE"] = self.tracestate
        else:
            env.pop("TRACESTATE", None)

    def attempt_claimed(self, task_id: str, attempt_id: int, *, agent: str | None = None) -> None:
        """The claim of the attempt :meth:`apply` prepared holds: keep its span's ids."""
        span_id, start_ns = self._pending.pop(task_id, (new_span_id(), time.time_ns()))
        parent = self.run.span_id if self.run is not None else self.root.span_id
        row = StoredSpan(self.mission, f"attempt:{attempt_id}", self.root.trace_id, span_id,
                         parent, self.tracestate, agent or agent_of(self.worker), start_ns,
                         detail=self.worker)
        store.insert(self.conn, row)
        self._attempts[attempt_id] = row

    def attempt_span(self, attempt_id: int) -> SpanRef | None:
        row = self._attempts.get(attempt_id) or store.get(self.conn, self.mission,
                                                          f"attempt:{attempt_id}")
        return self._ref(row) if row is not None else None

    def criteria(self, attempt_id: int, task_id: str, entry: Mapping,
                 started: float | None = None, ended: float | None = None) -> None:
        """A span per criterion the checker ran for this attempt, under its span."""
        parent = self.attempt_span(attempt_id)
        if parent is None:
            return
        spans.criteria(parent, task_id, entry, start_ns=_ns(started) if started else None,
                       end_ns=_ns(ended), tracestate=self.tracestate)

    def trace_collector(self, collector) -> None:
        """Give the criteria a sweep checks (a worker nobody watched is gone) their spans."""
        collect = collector.collect

        def traced(claim, reason: str):
            started = time.time()
            entry, extra = collect(claim, reason)
            self.criteria(claim.attempt_id, claim.task_id, entry, started, time.time())
            return entry, extra

        collector.collect = traced

    def flush(self) -> int:
        """Emit every ended attempt of the mission not emitted yet; return how many."""
        since = self.root.start_ns / 1e9
        rows = self.conn.execute(
            "SELECT a.id, a.task_id, a.number, a.holder, a.claimed_at, a.dispatched_at, "
            "a.ended_at, a.outcome, a.exit_code, a.timed_out, a.error, t.title, t.max_retries, "
            "s.scope IS NOT NULL AS stored "
            "FROM attempts a JOIN tasks t ON t.mission_id = a.mission_id AND t.id = a.task_id "
            "LEFT JOIN trace_spans s ON s.mission_id = a.mission_id "
            "AND s.scope = 'attempt:' || a.id "
            "WHERE a.mission_id = ? AND a.outcome IS NOT NULL "
            "AND ((s.scope IS NOT NULL AND s.emitted = 0) OR (s.scope IS NULL AND a.ended_at >= ?))"
            " ORDER BY a.id", (self.mission, since)).fetchall()
        agents = self._agents()
        emitted = 0
        for row in rows:
            scope = f"attempt:{row['id']}"
            agent = agents.get((row["task_id"], row["number"]))
            if row["stored"]:
                stored = store.get(self.conn, self.mission, scope)
                if stored is None or not store.claim_emit(self.conn, self.mission, scope):
                    continue
            else:
                stored = StoredSpan(self.mission, scope, self.root.trace_id, new_span_id(),
                                    self.root.span_id, self.tracestate,
                                    (agent or {}).get("name") or "agent", _ns(row["claimed_at"]),
                                    emitted=True)
                if not store.insert(self.conn, stored):
                    continue
            self._emit_attempt(stored, row, agent)
            emitted += 1
        # A workflow-driven mission's span ends with the mission.
        finished = self.conn.execute("SELECT finished_at FROM missions WHERE id = ?",
                                     (self.mission,)).fetchone()
        if finished is not None and finished[0] is not None:
            for run in store.pending(self.conn, self.mission, "run:"):
                if run.pid is None:
                    self._emit_run(run, _ns(finished[0]), None, None)
        return emitted

    def _agents(self) -> dict[tuple[str, int], dict]:
        """(task, attempt) → the harness agent a session hook recorded, if any."""
        try:
            rows = self.conn.execute(
                "SELECT task_id, attempt, agent_id, name FROM agents WHERE mission_id = ? "
                "ORDER BY id", (self.mission,)).fetchall()
        except sqlite3.OperationalError:
            return {}
        return {(r[0], r[1]): {"agent_id": r[2], "name": r[3]} for r in rows}

    def _emit_attempt(self, stored: StoredSpan, row: sqlite3.Row, agent: dict | None) -> None:
        outcome = row["outcome"]
        error = None
        if outcome != "verified":
            error = "timeout" if row["timed_out"] else ATTEMPT_ERRORS.get(outcome, outcome)
        name = (agent or {}).get("name") or stored.label
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": name,
            "gen_ai.agent.id": (agent or {}).get("agent_id"),
            "dispatch_kit.mission": self.mission,
            "dispatch_kit.task.id": row["task_id"],
            "dispatch_kit.task.title": spans.clip(row["title"], 200),
            "dispatch_kit.attempt": row["number"],
            "dispatch_kit.max_attempts": 1 + row["max_retries"],
            "dispatch_kit.holder": row["holder"],
            "dispatch_kit.worker.command": spans.clip(stored.detail) if stored.detail else None,
            "dispatch_kit.verdict": outcome,
            "dispatch_kit.timed_out": bool(row["timed_out"]),
            "process.exit.code": row["exit_code"],
        }
        parent = SpanRef(stored.trace_id, stored.parent_id) if stored.parent_id else None
        spans.emit(f"invoke_agent {name}", span_id=stored.span_id, trace_id=stored.trace_id,
                   parent=parent, start_ns=stored.start_ns, end_ns=_ns(row["ended_at"]),
                   attributes=attributes, error_type=error, message=row["error"],
                   tracestate=stored.tracestate)
