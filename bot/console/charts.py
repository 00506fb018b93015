"""Charts as inline SVG, drawn on the server: no script, no CDN, readable in any browser
(the console must work on networks without internet access). Each point carries a
<title>, which browsers show as a tooltip."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#4b5563")
WIDTH, HEIGHT = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 34


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per x label; None = no data in that bucket


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    *,
    chart_id: str = "",
) -> Markup:
    values = [v for s in series for v in s.values if v is not None]
    top = nice_ceiling(max(values, default=0.0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / count)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (v / top)

    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for step in range(5):  # horizontal grid with value labels
        value = top * step / 4
        gy = y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{WIDTH - RIGHT}" y2="{gy:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(fmt(value))}</text>"
        )
    for i in sorted({0, count // 2, count - 1}):  # a few time labels
        if i < len(labels):
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 12}" text-anchor="middle" class="axis">'
                f"{escape(labels[i])}</text>"
            )
    if not values:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            'class="empty">no requests in this range</text>'
        )
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        for run in _runs(line.values):  # a gap where a bucket has no data
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
            for i, v in run:
                tip = f"{line.name} · {labels[i] if i < len(labels) else ''}: {fmt(v)}"
                parts.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{escape(tip)}</title></circle>"
                )
    if len(series) > 1:  # legend
        for index, line in enumerate(series):
            lx = LEFT + index * 110
            colour = PALETTE[index % len(PALETTE)]
            parts.append(
                f'<rect x="{lx}" y="{HEIGHT - 9}" width="9" height="9" fill="{colour}"/>'
                f'<text x="{lx + 13}" y="{HEIGHT - 1}" class="legend">'
                f"{escape(line.name)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def waterfall(stages: Sequence[tuple[str, float, float]], total_ms: float) -> Markup:
    """One bar per stage (name, start ms, duration ms) on the request's timeline."""
    row, label_w, width = 20, 110, WIDTH
    span = max(total_ms, max((s + d for _, s, d in stages), default=0.0), 1.0)
    height = row * len(stages) + 8
    parts = [
        f'<svg class="waterfall" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="stage timings" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    scale = (width - label_w - 70) / span
    for index, (name, start, duration) in enumerate(stages):
        top = 4 + index * row
        bar_x = label_w + start * scale
        parts.append(
            f'<text x="{label_w - 6}" y="{top + 13}" text-anchor="end" class="axis">'
            f"{escape(name)}</text>"
            f'<rect x="{bar_x:.1f}" y="{top + 3}" width="{max(duration * scale, 1.5):.1f}" '
            f'height="12" fill="{PALETTE[index % len(PALETTE)]}">'
            f"<title>{escape(name)}: {duration:.1f} ms from {start:.1f} ms</title></rect>"
            f'<text x="{bar_x + max(duration * scale, 1.5) + 4:.1f}" y="{top + 13}" '
            f'class="axis">{duration:.1f} ms</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]
