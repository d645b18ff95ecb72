"""Attempts on a time axis, one row per task: waits, retries and timeouts at a glance.

A dotted line is a task ready but not yet started (waiting for a free worker);
each bar is one attempt, coloured by how it ended, a timeout striped and marked.
"""

from __future__ import annotations

from dispatch_kit.durations import format_duration
from dispatch_kit.report.data import MissionView
from dispatch_kit.report.style import OUTCOME_COLOURS, clip, esc

LABEL_W, WIDTH, ROW_H, BAR_H, TOP, PAD = 150, 960, 30, 18, 28, 10


def timeline_svg(view: MissionView) -> str:
    start = view.started if view.started is not None else view.now
    span = max(view.ended - start, 1e-3)
    plot = WIDTH - LABEL_W - PAD * 2
    height = TOP + ROW_H * max(1, len(view.tasks)) + PAD

    def x(t: float) -> float:
        return LABEL_W + PAD + (min(max(t, start), view.ended) - start) / span * plot

    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
           f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
           'aria-label="timeline of attempts">',
           '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f08c00"/>'
           '<rect width="3" height="6" fill="#ffd8a8"/></pattern></defs>']
    for i in range(5):  # the axis: five ticks with elapsed time
        t = start + span * i / 4
        tx = x(t)
        out.append(f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{height - PAD}" '
                   'stroke="#e9ecef"/>')
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(f'<text x="{tx:.1f}" y="{TOP - 10}" class="tick" text-anchor="{anchor}">'
                   f"{esc(format_duration(t - start))}</text>")
    for row, task in enumerate(view.tasks):
        y = TOP + row * ROW_H
        mid = y + ROW_H / 2
        out.append(f'<g class="row" data-task="{esc(task.id)}">')
        out.append(f'<text x="{LABEL_W}" y="{mid + 4:.1f}" class="row-label" text-anchor="end">'
                   f"{esc(clip(task.id, 20))}</text>")
        first = task.attempts[0].start if task.attempts else None
        if task.ready_at is not None and (first is None or first - task.ready_at > 0.0005):
            wait_end = first if first is not None else view.ended
            if task.state in ("ready", "claimed", "dispatched") or first is not None:
                out.append(
                    f'<line class="wait" x1="{x(task.ready_at):.1f}" y1="{mid:.1f}" '
                    f'x2="{x(wait_end):.1f}" y2="{mid:.1f}" stroke="#868e96" '
                    f'stroke-width="2" stroke-dasharray="2 3"><title>waited '
                    f"{esc(format_duration(wait_end - task.ready_at))} for a worker"
                    "</title></line>")
        for attempt in task.attempts:
            end = attempt.end if attempt.end is not None else view.now
            key = "timeout" if attempt.timed_out else (attempt.outcome or "running")
            fill = "url(#stripes)" if attempt.timed_out else OUTCOME_COLOURS.get(key, "#868e96")
            x0, x1 = x(attempt.start), x(end)
            w = max(x1 - x0, 2.0)
            what = "timed out" if attempt.timed_out else (attempt.outcome or "running")
            took = format_duration(end - attempt.start)
            tip = f"{task.id} attempt {attempt.number}: {what}, {took}"
            if attempt.error:
                tip += "\n" + clip(attempt.error, 400)
            out.append(
                f'<rect class="attempt" data-outcome="{esc(key)}" x="{x0:.1f}" '
                f'y="{mid - BAR_H / 2:.1f}" width="{w:.1f}" height="{BAR_H}" rx="3" '
                f'fill="{fill}"><title>{esc(tip)}</title></rect>')
            if w >= 16:
                out.append(f'<text x="{x0 + w / 2:.1f}" y="{mid + 4:.1f}" class="bar-label" '
                           f'text-anchor="middle">{attempt.number}</text>')
        if task.state == "skipped":
            out.append(f'<text x="{LABEL_W + PAD}" y="{mid + 4:.1f}" class="note">skipped: '
                       f"depends on {esc(task.skipped_because)}, which failed</text>")
        elif not task.attempts and task.state == "ready":
            out.append(f'<text x="{LABEL_W + PAD}" y="{mid + 4:.1f}" class="note">'
                       "not started</text>")
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
