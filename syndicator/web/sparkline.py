"""Sparklines as inline SVG: a polyline built from numbers only (no CDN, no script)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT = 120, 24
MAX_POINTS = 120  # more readings than pixels: keep the last ones


def points(values: Sequence[float], width: int = WIDTH, height: int = HEIGHT) -> str:
    """The polyline's points: the first value at the left, the last at the right, the
    highest at the top; a flat line sits at the bottom. Empty when there are no values."""
    vals = [float(v) for v in values][-MAX_POINTS:]
    if not vals:
        return ""
    if len(vals) == 1:
        vals = vals * 2  # one reading: a flat line across
    low, high = min(vals), max(vals)
    span = high - low
    step = width / (len(vals) - 1)
    pad = 1.0  # the stroke's half-width stays inside the box
    out = []
    for i, v in enumerate(vals):
        y = height - pad - ((v - low) / span * (height - 2 * pad) if span else 0.0)
        out.append(f"{i * step:.1f},{y:.1f}")
    return " ".join(out)


def svg(values: Sequence[float], label: str = "") -> Markup:
    """An inline <svg> sparkline (the label is the accessible name)."""
    pts = points(values)
    if not pts:
        return Markup('<span class="muted">—</span>')
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{label}"><polyline points="{pts}" fill="none" stroke="currentColor" '
        'stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/></svg>'
    ).format(w=WIDTH, h=HEIGHT, label=label, pts=pts)
