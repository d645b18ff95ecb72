"""Durations as people type them on a command line: ``30s``, ``10m``, ``2h``, ``1h30m``.

Leases, stale thresholds and timeouts are all durations. Accepting one
spelling everywhere (and rejecting anything else with a clear message) keeps a
typo such as ``--lease 10x`` from silently becoming a ten-second lease.
"""

from __future__ import annotations

import math
import re

from dispatch_kit.errors import InputError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_BARE = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, *, option: str = "duration", allow_zero: bool = False) -> float:
    """Seconds in ``text``: a bare number of seconds or unit parts (ms, s, m, h, d) in a row."""
    raw = str(text).strip().lower()
    seconds: float | None = None
    if _BARE.fullmatch(raw):
        seconds = float(raw)
    elif raw:
        pos, total = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos == len(raw):
            seconds = total
    if seconds is None or not math.isfinite(seconds):
        raise InputError(
            f"bad value {text!r}: expected a number of seconds or e.g. 30s, 10m, 2h, 1h30m",
            path=option,
        )
    if seconds <= 0 and not allow_zero:
        raise InputError(f"bad value {text!r}: must be more than zero", path=option)
    return seconds


def format_duration(seconds: float | None) -> str:
    """Short human form: ``0.42s``, ``12.3s``, ``4m 05s``, ``2h 03m``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
