"""The mission page: ``dispatch-kit ledger status --format html``, one file a person reads.

What a user asks of a running or finished mission (what is done, what is
waiting for what, which attempt failed and why, where the time went) at a
glance: the plan's graph coloured by state, a timeline of every attempt per task
(waits, retries and timeouts visible), each failure's criterion with its output
tail, and totals. The graph and the timeline are inline SVG drawn here in
Python: no JavaScript, no fonts or styles fetched, nothing for a browser to load
beyond the page itself (a bundled Mermaid alone is ~5.7 MB), so the page opens
from a CI artifact, an e-mail or a file:// URL the same.

Everything from the ledger (titles, errors, criterion output) is untrusted text
written by workers; it reaches the page only through :func:`html.escape`, and the
page's Content-Security-Policy forbids scripts and fetches as a second fence.

Parts: ``data`` (the ledger read into plain records), ``graph`` and ``timeline``
(SVG), ``page`` (the HTML around them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch_kit.ledger import Ledger


def mission_page(ledger: Ledger, mission: str, *, now: float | None = None) -> str:
    """The self-contained HTML page of one mission."""
    from dispatch_kit.report.data import load
    from dispatch_kit.report.page import render

    return render(load(ledger, mission, now=now))
