"""Colours and the escaping every part of the page goes through.

One palette for the graph, the timeline and the legend, so a colour means the
same state everywhere on the page.
"""

from __future__ import annotations

import html

# (fill, stroke) per state a reader tells apart.
STATE_COLOURS = {
    "verified": ("#d3f9d8", "#2b8a3e"),
    "failed": ("#ffe3e3", "#c92a2a"),
    "skipped": ("#f1f3f5", "#868e96"),
    "running": ("#fff3bf", "#e67700"),
    "ready": ("#e7f5ff", "#1971c2"),
    "waiting": ("#ffffff", "#868e96"),
}
# Bar colours per attempt outcome on the timeline.
OUTCOME_COLOURS = {
    "verified": "#2f9e44",
    "failed": "#e03131",
    "timeout": "#f08c00",
    "lost": "#868e96",
    "interrupted": "#adb5bd",
    "released": "#adb5bd",
    "running": "#fab005",
}


def esc(value: object) -> str:
    """Text from the ledger as HTML/SVG text or attribute value (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def visual_state(state: str, depends_on: list[str], verified: set[str]) -> str:
    """The state as drawn: claimed/dispatched are running; ready splits into ready/waiting."""
    if state in ("claimed", "dispatched"):
        return "running"
    if state == "ready":
        return "waiting" if any(d not in verified for d in depends_on) else "ready"
    return state
