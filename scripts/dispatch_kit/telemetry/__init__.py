"""OpenTelemetry traces of a mission: a workflow span per run, an agent span per attempt.

Teams already watch agents in Jaeger, Langfuse, Phoenix or any OTLP backend, and
``claude -p`` joins a trace handed to it in ``TRACEPARENT``. dispatch-kit knows
the mission's structure, so it emits it there:

- one ``invoke_workflow {mission}`` span per ``dispatch-kit run`` (and per
  ``run --detach``); the first one is the mission's root, later runs are its
  children, so a resumed mission stays one trace;
- one ``invoke_agent {agent}`` span per attempt, with the task id, attempt,
  worker command, verdict and ``error.type``; the worker gets ``TRACEPARENT``
  (and ``TRACESTATE``) naming that span, so its own spans nest under it;
- one ``execute_tool {kind}`` span per exit criterion checked, under its attempt
  (``dispatch-kit check`` alone: under a ``check`` span, itself under the
  caller's ``TRACEPARENT``, so a worker that checks its own work nests too).

Names follow the GenAI agent-span conventions of OpenTelemetry semantic conventions
v1.41.0 (``docs/gen-ai/gen-ai-agent-spans.md``, status Development):
``gen_ai.operation.name`` ``invoke_workflow`` / ``invoke_agent`` / ``execute_tool``,
``gen_ai.workflow.name``, ``gen_ai.agent.name``, ``gen_ai.tool.name``,
``gen_ai.tool.call.id``, ``error.type``. (The standalone GenAI conventions v0.1.0
later fold the workflow span into ``invoke_agent`` and rename
``gen_ai.workflow.name`` to ``gen_ai.agent.name``; both names are set on the
workflow span, so either reading finds it.)

An attempt outlives the process that started it (``--detach``, a killed runner
adopted by the next), so its span cannot be an open SDK span. Its ids and start
are chosen when the worker starts and kept in the ledger (table ``trace_spans``,
created on first use); whichever process later sees the attempt end (the run
that watched it, the next run that adopted or swept it, ``attempt finish``)
emits it with those ids. Nothing is lost to a ``kill -9`` except spans of work
that never ended.

Cost when off: this module imports nothing beyond the standard library, and
:func:`enabled` is one look at the environment; the SDK loads only when the
standard variables ask for traces (``OTEL_TRACES_EXPORTER`` other than ``none``,
or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``), and ``OTEL_SDK_DISABLED=true``
turns it all off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch_kit.ledger import Ledger
    from dispatch_kit.telemetry.mission import MissionTrace


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OpenTelemetry environment asks for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def for_mission(ledger: Ledger, mission: str, *, kind: str = "run") -> MissionTrace | None:
    """The mission's trace for this process, or None (and no import) when tracing is off."""
    if not enabled():
        return None
    from dispatch_kit.telemetry.mission import MissionTrace

    return MissionTrace(ledger, mission, kind=kind)
