"""The HTML around the two drawings: totals, legend, failures, one inline stylesheet.

The Content-Security-Policy allows inline styles and nothing else (no script, no
image, font or connection), so even text that escaped its escaping could not
make the page run code or fetch anything.
"""

from __future__ import annotations

import time

from dispatch_kit.durations import format_duration
from dispatch_kit.report.data import MissionView, TaskView
from dispatch_kit.report.graph import graph_svg
from dispatch_kit.report.style import OUTCOME_COLOURS, STATE_COLOURS, clip, esc
from dispatch_kit.report.timeline import timeline_svg

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TAIL_LINES = 15

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#212529;margin:24px;
max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px}
.goal{color:#495057;margin:0 0 14px}.state{font-weight:600}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.totals div{border:1px solid #dee2e6;border-radius:6px;padding:6px 12px;min-width:90px}
.totals b{display:block;font-size:18px}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:4px;
vertical-align:-2px;border:1px solid #adb5bd}
svg text{font-family:system-ui,sans-serif}.node-id{font-weight:600;font-size:13px}
.node-detail,.tick,.note{font-size:11px;fill:#495057}.row-label{font-size:12px}
.bar-label{font-size:11px;fill:#fff;font-weight:600}
.failure{border-left:4px solid #e03131;padding:4px 12px;margin:10px 0;background:#fff5f5}
.failure h3{font-size:14px;margin:4px 0}
pre{background:#f8f9fa;border:1px solid #e9ecef;padding:8px;overflow:auto;font-size:12px;
white-space:pre-wrap;word-break:break-word;margin:4px 0}
footer{color:#868e96;font-size:12px;margin-top:24px}
"""


def _totals(view: MissionView) -> str:
    attempts = [a for t in view.tasks for a in t.attempts]
    retries = sum(max(0, len(t.attempts) - 1) for t in view.tasks)
    timeouts = sum(a.timed_out for a in attempts)
    worker_time = sum(((a.end or view.now) - a.start) for a in attempts)
    wall = view.duration if view.duration is not None else 0.0
    items = [("tasks", len(view.tasks)), ("verified", view.counts.get("verified", 0)),
             ("failed", view.counts.get("failed", 0)), ("skipped", view.counts.get("skipped", 0)),
             ("pending", view.counts.get("pending", 0)), ("attempts", len(attempts)),
             ("retries", retries), ("timeouts", timeouts),
             ("wall time", format_duration(wall)), ("worker time", format_duration(worker_time))]
    cells = "".join(f'<div class="total" data-total="{esc(k)}"><b>{esc(v)}</b>{esc(k)}</div>'
                    for k, v in items)
    return f'<section class="totals">{cells}</section>'


def _legend(colours: dict, swatch) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{swatch(v)}"></i>{esc(k)}</span>'
        for k, v in colours.items()) + "</p>"


def _tail(text: str | None) -> str:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return "\n".join(lines[-TAIL_LINES:])


def _failures(view: MissionView) -> str:
    parts: list[str] = []
    for task in view.tasks:
        failed = [a for a in task.attempts if a.outcome in ("failed", "lost")]
        if not failed:
            continue
        body = []
        for attempt in failed:
            how = "timed out" if attempt.timed_out else attempt.outcome
            body.append(f"<p>attempt {attempt.number}: {esc(how)}"
                        + (f", worker exit {esc(attempt.exit_code)}"
                           if attempt.exit_code not in (None, 0) else "") + "</p>")
            if attempt.error:
                body.append(f"<pre>{esc(clip(attempt.error, 4000))}</pre>")
        body.append(_last_check(task))
        verdict = "failed for good" if task.state == "failed" else f"now {task.state}"
        parts.append(f'<div class="failure" data-task="{esc(task.id)}"><h3>{esc(task.id)} — '
                     f"{esc(task.title)} ({esc(verdict)})</h3>{''.join(body)}</div>")
    if not parts:
        return "<p>No attempt failed.</p>"
    return "".join(parts)


def _last_check(task: TaskView) -> str:
    """The latest failed check's criteria, with their output tails."""
    entry = task.last_check or {}
    out = []
    for crit in entry.get("criteria") or []:
        if not isinstance(crit, dict) or crit.get("verdict") == "pass":
            continue
        out.append(f"<p>last failed check: criterion <code>{esc(crit.get('criterion'))}</code> "
                   f"{esc(crit.get('verdict'))}"
                   + (f": {esc(crit.get('message'))}" if crit.get("message") else "") + "</p>")
        for stream in ("stderr_tail", "stdout_tail"):
            tail = _tail(crit.get(stream))
            if tail:
                out.append(f"<p>{esc(stream.split('_')[0])}:</p><pre>{esc(tail)}</pre>")
    return "".join(out)


def render(view: MissionView) -> str:
    """The whole page."""
    word = {"complete": "complete", "failed": "finished with failures",
            "in_progress": "in progress"}.get(view.state, view.state)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(view.now))
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Mission {esc(view.mission)}: {esc(word)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>Mission {esc(view.mission)}: <span class="state" data-state="{esc(view.state)}">'
        f"{esc(word)}</span></h1>",
        f'<p class="goal">{esc(view.goal)}</p>',
        _totals(view),
        "<h2>Plan</h2>",
        _legend(STATE_COLOURS, lambda v: v[0]),
        graph_svg(view),
        "<h2>Timeline</h2>",
        _legend(OUTCOME_COLOURS | {"waiting": "#ffffff"}, lambda v: v),
        timeline_svg(view),
        "<h2>Failures</h2>",
        _failures(view),
        f"<footer>dispatch-kit ledger status --format html · {esc(when)}</footer>",
        "</body></html>\n",
    ])
