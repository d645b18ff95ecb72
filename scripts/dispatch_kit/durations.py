"""Durations: parsed as people type them, written as people read them.

Leases, stale thresholds and timeouts are all durations. Accepting one
spelling everywhere (``30s``, ``10m``, ``2h``, ``1h30m``; anything else is
rejected with a clear message) keeps a typo such as ``--lease 10x`` from
silently becoming a ten-second lease.

They are written two ways, on purpose, and both live here:
:func:`format_duration` is compact and lines up in a terminal (``4m 05s``:
progress lines, ``ledger status``); :func:`prose_duration` reads as words in
the prompts and reports an agent reads (``4 min 5 s``), where ``4m`` could be
taken for four metres or four months.
"""

from __future__ import annotations

import math
import re
from typing import Any

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


def prose_duration(seconds: Any) -> str:
    """Seconds as words, the templates' ``duration`` filter: ``0.03 s``, ``2 min 5 s``, ``1 h``."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
