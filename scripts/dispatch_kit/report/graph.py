"""The plan's dependency graph as inline SVG, each task coloured by its state.

Layered left to right by longest dependency path (a task sits one column right
of its deepest dependency), so each column is a wave that could run at once.
"""

from __future__ import annotations

from dispatch_kit.report.data import MissionView
from dispatch_kit.report.style import STATE_COLOURS, clip, esc, visual_state

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 190, 52, 60, 18, 12


def layers(view: MissionView) -> dict[str, int]:
    depth: dict[str, int] = {}
    by_id = {t.id: t for t in view.tasks}

    def visit(task_id: str, seen: tuple[str, ...] = ()) -> int:
        if task_id in depth:
            return depth[task_id]
        if task_id in seen or task_id not in by_id:  # a cycle or unknown id: draw it flat
            return 0
        deps = by_id[task_id].depends_on
        depth[task_id] = 1 + max((visit(d, (*seen, task_id)) for d in deps), default=-1)
        return depth[task_id]

    for task in view.tasks:
        visit(task.id)
    return depth


def graph_svg(view: MissionView) -> str:
    depth = layers(view)
    columns: dict[int, list[str]] = {}
    for task in view.tasks:
        columns.setdefault(depth[task.id], []).append(task.id)
    pos: dict[str, tuple[int, int]] = {}
    for col, ids in columns.items():
        for row, task_id in enumerate(ids):
            pos[task_id] = (PAD + col * (NODE_W + COL_GAP), PAD + row * (NODE_H + ROW_GAP))
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + max((len(ids) for ids in columns.values()), default=1) * (
        NODE_H + ROW_GAP) - ROW_GAP
    verified = {t.id for t in view.tasks if t.state == "verified"}
    out = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="dependency graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#868e96"/></marker></defs>']
    for task in view.tasks:
        for dep in task.depends_on:
            if dep not in pos:
                continue
            x1, y1 = pos[dep][0] + NODE_W, pos[dep][1] + NODE_H // 2
            x2, y2 = pos[task.id][0], pos[task.id][1] + NODE_H // 2
            mid = (x1 + x2) // 2
            out.append(f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" '
                       'stroke="#868e96" stroke-width="1.5" marker-end="url(#arrow)"/>')
    for task in view.tasks:
        x, y = pos[task.id]
        kind = visual_state(task.state, task.depends_on, verified)
        fill, stroke = STATE_COLOURS.get(kind, STATE_COLOURS["waiting"])
        dash = ' stroke-dasharray="5 3"' if kind == "skipped" else ""
        tries = len(task.attempts)
        detail = kind if kind != "running" else f"{task.state} {task.attempt}/{task.max_attempts}"
        if tries:
            detail += f" · {tries} attempt{'s' if tries != 1 else ''}"
        out.append(
            f'<g class="node" data-task="{esc(task.id)}" data-state="{esc(kind)}">'
            f"<title>{esc(task.id)}: {esc(task.title)} ({esc(task.state)})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{x + 10}" y="{y + 20}" class="node-id">{esc(clip(task.id, 24))}</text>'
            f'<text x="{x + 10}" y="{y + 39}" class="node-detail">{esc(clip(detail, 30))}</text>'
            "</g>")
    out.append("</svg>")
    return "".join(out)
