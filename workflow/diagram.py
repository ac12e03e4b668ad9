"""Draw a workflow from its own definition: an SVG for pages, Mermaid text for documents.

The layout is layered: each state sits in the column of its shortest distance from the initial
state; arrows going forward are straight, arrows going back or within a column are curved.
"""

from __future__ import annotations

from collections import deque
from html import escape

from workflow.engine import Workflow

BOX_W, BOX_H, COL_GAP, ROW_GAP, PAD = 130, 40, 90, 34, 24


def _levels(wf: Workflow) -> dict[str, int]:
    level = {wf.initial: 0}
    queue = deque([wf.initial])
    while queue:
        state = queue.popleft()
        for src, _trigger, dest in wf.edges():
            if src == state and dest not in level:
                level[dest] = level[state] + 1
                queue.append(dest)
    for s in wf.states:  # unreachable states go last
        level.setdefault(s, max(level.values()) + 1)
    return level


def layout(wf: Workflow) -> dict[str, tuple[float, float]]:
    """Top-left corner of each state's box."""
    level = _levels(wf)
    columns: dict[int, list[str]] = {}
    for s in wf.states:
        columns.setdefault(level[s], []).append(s)
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, s in enumerate(members):
            pos[s] = (PAD + col * (BOX_W + COL_GAP), PAD + 18 + row * (BOX_H + ROW_GAP))
    return pos


def render_svg(
    wf: Workflow,
    current: str | None = None,
    labels: dict[str, str] | None = None,
    trigger_labels: dict[str, str] | None = None,
) -> str:
    """An SVG of the machine with ``current`` lit; labels translate states and triggers."""
    labels = labels or {}
    trigger_labels = trigger_labels or {}
    pos = layout(wf)
    width = max(x for x, _ in pos.values()) + BOX_W + PAD
    height = max(y for _, y in pos.values()) + BOX_H + PAD + 18
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{escape(wf.name)} state diagram">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6c757d"/></marker></defs>',
    ]
    pairs: dict[tuple[str, str], list[str]] = {}
    for src, trig, dest in wf.edges():
        pairs.setdefault((src, dest), []).append(trigger_labels.get(trig, trig))
    for (src, dest), trigs in pairs.items():
        x1, y1 = pos[src]
        x2, y2 = pos[dest]
        cx1, cy1 = x1 + BOX_W / 2, y1 + BOX_H / 2
        cx2, cy2 = x2 + BOX_W / 2, y2 + BOX_H / 2
        text = escape(" / ".join(trigs))
        forward = x2 > x1
        if forward:
            sx, sy, ex, ey = x1 + BOX_W, cy1, x2, cy2
            mx, my = (sx + ex) / 2, (sy + ey) / 2 - 6
            path = f"M{sx:.0f},{sy:.0f} L{ex:.0f},{ey:.0f}"
        else:
            # backwards or same column: bow below (or to the right for same column)
            reverse = (dest, src) in pairs
            sx, sy = cx1 + (12 if reverse else 0), y1 + BOX_H
            ex, ey = cx2 + (12 if reverse else 0), y2 + BOX_H
            if x1 == x2:
                sx, sy, ex, ey = x1 + BOX_W, cy1 + 8, x2 + BOX_W, cy2 + 8
                qx, qy = x1 + BOX_W + 46, (sy + ey) / 2
            else:
                qx, qy = (sx + ex) / 2, max(sy, ey) + 46
            path = f"M{sx:.0f},{sy:.0f} Q{qx:.0f},{qy:.0f} {ex:.0f},{ey:.0f}"
            mx, my = qx, qy - 14 if x1 != x2 else qy
        out.append(
            f'<path d="{path}" fill="none" stroke="#6c757d" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
        out.append(
            f'<text x="{mx:.0f}" y="{my:.0f}" font-size="11" text-anchor="middle" fill="#495057">{text}</text>'
        )
    for s, (x, y) in pos.items():
        lit = s == current
        fill, stroke, colour = ("#198754", "#146c43", "#fff") if lit else ("#f8f9fa", "#adb5bd", "#212529")
        out.append(
            f'<g class="state{" current" if lit else ""}" data-state="{escape(s)}">'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="9" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2.5 if lit else 1.2}"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 5:.0f}" font-size="14" text-anchor="middle" '
            f'fill="{colour}">{escape(labels.get(s, s))}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def to_mermaid(wf: Workflow) -> str:
    """Mermaid ``stateDiagram-v2`` source of the machine, for Markdown documents."""
    lines = ["stateDiagram-v2", f"    [*] --> {wf.initial}"]
    lines += [f"    {src} --> {dest}: {trig}" for src, trig, dest in wf.edges()]
    return "\n".join(lines)


def machines_markdown() -> str:
    """docs/state-machines.md: every declared machine, drawn from its own definition."""
    from config.database import import_models

    import_models()
    parts = [
        "# State machines",
        "",
        "Generated from the machines' own definitions by `campaignflow diagrams` — never drawn by hand.",
        "A test fails when this file is out of date.",
        "",
    ]
    for wf in sorted(Workflow.registry.values(), key=lambda w: w.name):
        parts += [f"## {wf.name}", "", "```mermaid", to_mermaid(wf), "```", ""]
        parts += ["| from | trigger | to | guards | reason required |", "|---|---|---|---|---|"]
        for t in wf.transitions:
            guards = ", ".join(g.name for g in t.guards) or "—"
            parts.append(
                f"| {', '.join(t.source)} | `{t.trigger}` | {t.dest} | {guards} | {'yes' if t.reason_required else ''} |"
            )
        parts.append("")
    return "\n".join(parts)
