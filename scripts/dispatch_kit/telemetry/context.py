"""W3C trace context (``traceparent``) as text, without the OpenTelemetry SDK.

The runner hands each worker a ``TRACEPARENT`` and the ledger keeps ids as hex,
so formatting and parsing live here, usable where the SDK is not installed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class SpanRef:
    """A span's identity: what a child needs to name its parent."""

    trace_id: int
    span_id: int
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        flags = "01" if self.sampled else "00"
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{flags}"


def new_trace_id() -> int:
    return secrets.randbits(128) or 1


def new_span_id() -> int:
    return secrets.randbits(64) or 1


def parse_traceparent(value: str | None) -> SpanRef | None:
    """A valid ``traceparent`` header as a :class:`SpanRef`; None for anything else."""
    match = _TRACEPARENT.match((value or "").strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if not trace_id or not span_id or (match.group(1) == "00" and match.group(5)):
        return None
    return SpanRef(trace_id, span_id, bool(int(match.group(4), 16) & 1))
