"""Spans of ``dispatch-kit check`` run on its own (not under a runner).

A worker that checks its own work before it exits (the worker prompt asks it to)
runs ``dispatch-kit check`` with the ``TRACEPARENT`` its attempt gave it, so the
check span lands under that attempt: the trace shows the worker's own check next
to the runner's verdict.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from dispatch_kit.telemetry import spans
from dispatch_kit.telemetry.context import SpanRef, new_span_id, new_trace_id, parse_traceparent
from dispatch_kit.telemetry.setup import flush


def check_spans(plan_path: str, result: Mapping, started_ns: int) -> None:
    """A ``check {plan}`` span (under the caller's ``TRACEPARENT``) with a span per criterion."""
    incoming = parse_traceparent(os.environ.get("TRACEPARENT"))
    tracestate = os.environ.get("TRACESTATE") or None
    me = SpanRef(incoming.trace_id if incoming else new_trace_id(), new_span_id())
    end_ns = time.time_ns()
    summary = result.get("summary") or {}
    failed = not result.get("passed")
    spans.emit(
        f"check {Path(plan_path).stem}", span_id=me.span_id, trace_id=me.trace_id,
        parent=incoming, start_ns=started_ns, end_ns=end_ns, tracestate=tracestate,
        attributes={"dispatch_kit.plan.load": str(plan_path),
                    **{f"dispatch_kit.criteria.{k}": int(v) for k, v in summary.items()}},
        error_type="criteria_failed" if failed else None,
        message="exit criteria not met" if failed else None,
    )
    for task in result.get("tasks") or []:
        spans.criteria(me, str(task.get("id")), task, start_ns=started_ns, end_ns=end_ns,
                       tracestate=tracestate)
    flush()
