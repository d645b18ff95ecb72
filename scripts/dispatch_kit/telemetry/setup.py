"""The OpenTelemetry SDK configured from the standard environment (imported only when on).

``OTEL_TRACES_EXPORTER`` names the exporters (``otlp``, ``console``, or any the
installed packages register under the ``opentelemetry_traces_exporter`` entry
point), ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` the resource, and
the OTLP exporter reads its own ``OTEL_EXPORTER_OTLP_*`` variables. The extra
``dispatch-kit[otel]`` installs the OTLP/HTTP exporter: HTTP with protobuf is the
protocol OpenTelemetry SDKs default to, and it needs no ``grpcio`` (a large native
wheel). ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=grpc`` uses the gRPC exporter when
that is installed.

Spans whose ids were chosen earlier (an attempt's, handed to its worker before it
started) are made with :func:`forced_ids`: the provider's id generator returns the
given ids for the next span created on this thread.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Tracer

from dispatch_kit.errors import InputError

SCOPE = "dispatch_kit"


class _ForcedIds(RandomIdGenerator):
    """Random ids, except where :func:`forced_ids` set the next ones for this thread."""

    def __init__(self) -> None:
        self.local = threading.local()

    def generate_span_id(self) -> int:
        forced = getattr(self.local, "span_id", None)
        if forced is not None:
            self.local.span_id = None
            return forced
        return super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = getattr(self.local, "trace_id", None)
        if forced is not None:
            self.local.trace_id = None
            return forced
        return super().generate_trace_id()


_IDS = _ForcedIds()
_provider: TracerProvider | None = None


@contextmanager
def forced_ids(span_id: int, trace_id: int | None = None) -> Iterator[None]:
    """The next span started on this thread gets these ids (the trace id only if it is a root)."""
    _IDS.local.span_id, _IDS.local.trace_id = span_id, trace_id
    try:
        yield
    finally:
        _IDS.local.span_id = _IDS.local.trace_id = None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dispatch-kit")
    except PackageNotFoundError:
        return "0"


def _exporters() -> list[SpanExporter]:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    found: list[SpanExporter] = []
    for name in names:
        if name in ("", "none"):
            continue
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            found.append(ConsoleSpanExporter(out=sys.stderr))
        elif name == "otlp":
            found.append(_otlp())
        else:
            found.append(_entry_point(name))
    return found


def _otlp() -> SpanExporter:
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if protocol == "grpc" else "http")
        raise InputError(f"OTEL_TRACES_EXPORTER=otlp needs {package}: "
                         "pip install 'dispatch-kit[otel]'", path="OTEL_TRACES_EXPORTER") from None
    return OTLPSpanExporter()


def _entry_point(name: str) -> SpanExporter:
    from importlib.metadata import entry_points

    for point in entry_points(group="opentelemetry_traces_exporter", name=name):
        return point.load()()
    raise InputError(f"no span exporter named {name!r} is installed", path="OTEL_TRACES_EXPORTER")


def provider() -> TracerProvider:
    """The process's provider, built from the environment on first use."""
    global _provider
    if _provider is None:
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME")
                                    or "dispatch-kit", "service.version": _version()})
        made = TracerProvider(resource=resource, id_generator=_IDS)
        for exporter in _exporters():
            made.add_span_processor(BatchSpanProcessor(exporter))
        _provider = made
    return _provider


def install(exporter: SpanExporter) -> TracerProvider:
    """Use ``exporter`` alone, spans handed over as they end (for tests and embedders)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = TracerProvider(resource=Resource.create({"service.name": "dispatch-kit"}),
                               id_generator=_IDS, shutdown_on_exit=False)
    _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return _provider


def tracer() -> Tracer:
    return provider().get_tracer(SCOPE, _version())


def flush() -> None:
    """Hand finished spans to the exporters now (before this process exits or waits long)."""
    if _provider is not None:
        _provider.force_flush()
