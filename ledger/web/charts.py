"""Inline SVG drawn on the server: custody bars, the downtime timeline and
the attainment chart. Geometry only: every number shown as text comes
formatted from the report, and coordinates are the one place floats appear
(pixels, never outcomes)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

from ledger.domain.instants import parse_instant

# Colour-blind-safe (Okabe-Ito), assigned to orgs in sorted order.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")


def org_colours(orgs: Sequence[str]) -> dict[str, str]:
    return {org: PALETTE[i % len(PALETTE)] for i, org in enumerate(sorted(set(orgs)))}


def _x(instant: str | None, start: int, end: int, width: float, default: int) -> float:
    t = default if instant is None else parse_instant(instant)
    t = min(max(t, start), end)
    return width * (t - start) / (end - start) if end > start else 0.0


def custody_bar(holders: Sequence[dict[str, Any]], start: str, elapsed_seconds: str,
                colours: dict[str, str], width: int = 640) -> Markup:
    """Who held an incident when; misrouted stretches hatched. The bar spans
    the opening to the last custody change or the clock's elapsed time,
    whichever is later, so the handoffs stay readable."""
    a = parse_instant(start)
    known = [parse_instant(t) for h in holders for t in (h["from"], h["to"]) if t]
    b = max([*known, a + int(Decimal(elapsed_seconds) * 1_000_000)])
    b = max(b + (b - a) // 20, a + 1)
    parts = [f'<svg class="custody" viewBox="0 0 {width} 22" width="100%" height="22" '
             'preserveAspectRatio="none" role="img" aria-label="custody">',
             '<defs><pattern id="misrouted" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" opacity="0.6"/>'
             '</pattern></defs>']
    for h in holders:
        x0 = _x(h["from"], a, b, width, a)
        x1 = _x(h["to"], a, b, width, b)
        colour = colours.get(h["org"], "#999")
        title = escape(f'{h["org"]}: {h["from"]} to {h["to"] or "open"}'
                       + (" (misrouted)" if h.get("misrouted") else ""))
        parts.append(f'<g class="holder" data-org="{escape(h["org"])}" '
                     f'data-misrouted="{str(bool(h.get("misrouted"))).lower()}"><title>{title}</title>'
                     f'<rect x="{x0:.1f}" y="2" width="{max(x1 - x0, 1):.1f}" height="18" fill="{colour}"/>')
        if h.get("misrouted"):
            parts.append(f'<rect x="{x0:.1f}" y="2" width="{max(x1 - x0, 1):.1f}" height="18" '
                         'fill="url(#misrouted)"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def downtime_timeline(slices: Sequence[dict[str, Any]], windows: Sequence[dict[str, Any]],
                      period_start: str, period_end: str, colours: dict[str, str],
                      width: int = 720) -> Markup:
    """The month as one strip: maintenance windows above, downtime charged
    to each provider below, day ticks between."""
    a, b = parse_instant(period_start), parse_instant(period_end)
    height = 56
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
             'aria-label="downtime and maintenance over the period">',
             f'<rect x="0" y="18" width="{width}" height="22" fill="#f2f2f2"/>']
    day = 86_400_000_000
    t, n = a, 0
    while t <= b:
        x = _x(None, a, b, width, t)
        parts.append(f'<line x1="{x:.1f}" y1="40" x2="{x:.1f}" y2="{44 if n % 7 else 48}" stroke="#888"/>')
        t, n = t + day, n + 1
    for w in windows:
        x0, x1 = _x(w["start"], a, b, width, a), _x(w["end"], a, b, width, b)
        kind = "qualifying" if w.get("excluded") else "late notice"
        parts.append(f'<rect class="maintenance" x="{x0:.1f}" y="4" width="{max(x1 - x0, 2):.1f}" '
                     f'height="12" fill="{"#999" if w.get("excluded") else "#fff"}" stroke="#555">'
                     f'<title>{escape("maintenance " + w["start"] + " to " + w["end"] + f" ({kind})")}</title></rect>')
    for s in slices:
        x0, x1 = _x(s["from"], a, b, width, a), _x(s["to"], a, b, width, b)
        parts.append(f'<rect class="downtime" data-org="{escape(s["org"])}" x="{x0:.1f}" y="18" '
                     f'width="{max(x1 - x0, 2):.1f}" height="22" fill="{colours.get(s["org"], "#999")}">'
                     f'<title>{escape(_slice_title(s))}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _slice_title(s: dict[str, Any]) -> str:
    return f"{s['incident_id']} charged to {s['org']}: {s['from']} to {s['to']}"


def attainment_chart(history: Sequence[dict[str, Any]], width: int = 720) -> Markup:
    """Attainment per level over the charted periods: one small panel per
    level, a bar per period, the objective as a dashed line. The y axis
    spans from a little under the lowest value to 100 %."""
    levels: list[str] = []
    for entry in history:
        for lv in entry["levels"]:
            if lv["id"] not in levels:
                levels.append(lv["id"])
    if not levels:
        return Markup("")
    panel_h, label_w = 54, 170
    height = panel_h * len(levels) + 24
    plot_w = width - label_w - 10
    step = plot_w / max(len(history), 1)
    parts = [f'<svg class="attainment" viewBox="0 0 {width} {height}" width="100%" role="img" '
             'aria-label="attainment per service level over six periods">']
    for i, entry in enumerate(history):
        x = label_w + step * i + step / 2
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">'
                     f'{escape(entry["period"])}</text>')
    for row, level_id in enumerate(levels):
        top = row * panel_h + 4
        values = [Decimal(lv["attainment"]) for e in history for lv in e["levels"]
                  if lv["id"] == level_id and lv.get("attainment")]
        objective = next(Decimal(lv["objective"]) for e in history for lv in e["levels"]
                         if lv["id"] == level_id)
        floor = min([*values, objective]) if values else objective
        floor = max(Decimal(0), floor - (1 - floor) * Decimal("0.25") - Decimal("0.0001"))
        span = (Decimal(1) - floor) or Decimal(1)

        def y(value: Decimal, top: int = top, floor: Decimal = floor, span: Decimal = span) -> float:
            return top + 40 - float((value - floor) / span) * 40

        parts.append(f'<text x="0" y="{top + 24}" font-size="12">{escape(level_id)}</text>'
                     f'<line x1="{label_w}" y1="{top + 40}" x2="{width - 10}" y2="{top + 40}" stroke="#bbb"/>')
        for i, entry in enumerate(history):
            lv = next((v for v in entry["levels"] if v["id"] == level_id), None)
            x = label_w + step * i + step * 0.2
            if lv is None or not lv.get("attainment"):
                note = "no agreement" if lv is None else "nothing measured"
                parts.append(f'<text x="{x + step * 0.3:.1f}" y="{top + 14}" font-size="9" '
                             f'text-anchor="middle" fill="#777">{note}</text>')
                continue
            value = Decimal(lv["attainment"])
            colour = "#009e73" if lv["achieved"] else "#d55e00"
            parts.append(f'<text x="{x + step * 0.3:.1f}" y="{max(y(value) - 2, top + 8):.1f}" '
                         f'font-size="9" text-anchor="middle">{value * 100:.1f}%</text>')
            parts.append(f'<rect class="bar" data-level="{escape(level_id)}" data-period="'
                         f'{escape(entry["period"])}" data-value="{escape(lv["attainment"])}" '
                         f'x="{x:.1f}" y="{y(value):.1f}" width="{step * 0.6:.1f}" '
                         f'height="{top + 40 - y(value):.1f}" fill="{colour}"><title>'
                         f'{escape(entry["period"])}: {value * 100:.3f} %</title></rect>')
        parts.append(f'<line class="objective" x1="{label_w}" x2="{width - 10}" y1="{y(objective):.1f}" '
                     f'y2="{y(objective):.1f}" stroke="#333" stroke-dasharray="4 3"><title>objective '
                     f'{objective * 100} %</title></line>')
    parts.append("</svg>")
    return Markup("".join(parts))
