"""Making the spans: ids and times given, so a span can be emitted after the fact.

Every span here is created and ended in one call with its real start and end
times; the GenAI attribute names are those of semantic conventions v1.41.0 (see
the package docstring). A criterion's span is built from the checker's result
entry (verdict, duration, exit code), so the checker itself needs no tracing code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from dispatch_kit.telemetry.context import SpanRef, new_span_id
from dispatch_kit.telemetry.setup import forced_ids, tracer

Attributes = Mapping[str, str | int | float | bool]
ATTR_LIMIT = 1000  # characters of free text (a criterion, an error) kept on a span


def clip(text: str | None, limit: int = ATTR_LIMIT) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parent_context(parent: SpanRef | None, tracestate: str | None = None):
    """An OpenTelemetry context whose current span is ``parent`` (None: a new root)."""
    if parent is None:
        return trace.set_span_in_context(trace.INVALID_SPAN)
    state = TraceState.from_header([tracestate]) if tracestate else None
    context = SpanContext(parent.trace_id, parent.span_id, is_remote=True,
                          trace_flags=TraceFlags(1 if parent.sampled else 0), trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(context))


def emit(
    name: str,
    *,
    span_id: int,
    trace_id: int,
    parent: SpanRef | None,
    start_ns: int,
    end_ns: int | None = None,
    attributes: Attributes | None = None,
    error_type: str | None = None,
    message: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    tracestate: str | None = None,
) -> None:
    """One finished span with these ids; ``error_type`` marks it failed (``error.type``)."""
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    if error_type:
        attrs["error.type"] = error_type
    with forced_ids(span_id, trace_id):
        span = tracer().start_span(name, context=parent_context(parent, tracestate), kind=kind,
                                   attributes=attrs, start_time=start_ns)
    if error_type:
        span.set_status(Status(StatusCode.ERROR, clip(message, 200) or error_type))
    span.end(end_time=max(start_ns, end_ns if end_ns is not None else time.time_ns()))


def criteria(parent: SpanRef, task_id: str, entry: Mapping, *, start_ns: int | None = None,
             end_ns: int | None = None, tracestate: str | None = None) -> None:
    """One ``execute_tool`` span per criterion of a checker entry, under ``parent``.

    The checker reports each criterion's duration, not its start. When the
    durations add up to no more than the whole check took they ran one after
    another and are laid end to end; otherwise they ran in parallel and all
    start with the check.
    """
    items: Sequence[Mapping] = entry.get("criteria") or []
    end_ns = end_ns or time.time_ns()
    durations = [int(float(c.get("duration") or 0.0) * 1e9) for c in items]
    parallel = start_ns is not None and sum(durations) > end_ns - start_ns
    start = end_ns - sum(durations)
    if parallel:
        start = start_ns or start
    for crit, took in zip(items, durations, strict=True):
        verdict = str(crit.get("verdict") or "error")
        kind = str(crit.get("kind") or "shell")
        failed = verdict != "pass"
        emit(
            f"execute_tool {kind}",
            span_id=new_span_id(), trace_id=parent.trace_id, parent=parent,
            start_ns=start, end_ns=start + took, tracestate=tracestate,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": kind,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": f"{task_id}[{crit.get('index', 0)}]",
                "dispatch_kit.task.id": task_id,
                "dispatch_kit.criterion": clip(str(crit.get("criterion") or "")),
                "dispatch_kit.criterion.verdict": verdict,
                "process.exit.code": crit.get("exit_code"),
            },
            error_type=verdict if failed else None,
            message=str(crit.get("message") or "") if failed else None,
        )
        if parallel:
            start = start_ns or start
        else:
            start += took
