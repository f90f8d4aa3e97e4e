"""Charts drawn as SVG on the server: no JavaScript charting library, nothing to download."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777",
           "#4b5563")
WIDTH, HEIGHT = 560, 180
COLLECTING = "Collecting data: the first points appear within a few seconds."
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 24
SPIKE_SAMPLE = 8  # points above zero needed before a spike is cut (spike_free_top)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]   # (epoch seconds, value or gap)
    colour: str | None = None                      # None: the palette's, by position


def hue(name: str | None) -> int:
    """A fixed colour (an HSL hue) per queue name: the same on every page, every server and
    every day, so an operator learns that "emails" is teal."""
    return zlib.crc32((name or "").encode()) % 360


def queue_series(name: str, points: Sequence[tuple[float, float | None]]) -> Series:
    """A series drawn in its queue's own colour (the square before its name elsewhere)."""
    return Series(name, points, f"hsl({hue(name)}, 70%, 45%)")


def _colour(series: Series, index: int) -> str:
    return series.colour or PALETTE[index]


def nice_max(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def spike_free_top(values: Sequence[float]) -> float:
    """The top of a chart's scale: the highest value, unless a few spikes stand far above the
    rest (over 3 times the 90th percentile), when the scale fits the rest and the spikes are
    cut at the top, so one burst does not flatten every other minute into the floor. The
    percentile is of the points above zero: in per-minute buckets of a quiet hour most
    minutes are 0, and a percentile over them would be 0 and cut nothing. Fewer than
    SPIKE_SAMPLE points above zero say nothing of what is typical: nothing is cut then."""
    ordered = sorted(v for v in values if v > 0)
    if len(ordered) < SPIKE_SAMPLE:
        return max(values, default=0.0)
    typical = ordered[int((len(ordered) - 1) * 0.9)]
    if ordered[-1] > 3 * typical:
        return typical * 1.5
    return ordered[-1]


def line_chart(title: str, series: Sequence[Series], *, unit: Callable[[float], str] = str,
               now: float | None = None, span: float = 900.0, least_top: float = 0.0,
               empty: str = "") -> Markup:
    """A line chart over the last `span` seconds, with gridlines, a y scale and a legend."""
    values = [v for s in series for _, v in s.points if v is not None]
    if not values:
        return _empty(title, empty or COLLECTING)
    end = now or max(t for s in series for t, _ in s.points)
    top = max(nice_max(spike_free_top(values)), least_top)
    x = _scale(end - span, end, PAD_LEFT, WIDTH - PAD_RIGHT)
    y = _scale(0.0, top, HEIGHT - PAD_BOTTOM, PAD_TOP)
    parts = [_grid(top, y, unit), _time_axis(span, x, end)]
    for index, s in enumerate(series[:len(PALETTE)]):
        parts.append(_line(s, x, lambda v: y(min(v, top)), _colour(s, index)))
    if max(values) > top:  # a spike above the scale: cut at the top, its peak written there
        parts.append(f'<text x="{WIDTH - PAD_RIGHT}" y="{PAD_TOP + 10}" class="tick peak" '
                     f'text-anchor="end">peak {escape(unit(max(values)))} (cut)</text>')
    return _frame(title, "".join(parts), _legend(series), _summary(title, series, unit))


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) * (out_hi - out_lo) / span


def _steps(top: float) -> int:
    """Gridline intervals that land on round values: 0-5 by 1, 0-20 by 5, 0-4 by 1."""
    lead = round(top / 10 ** math.floor(math.log10(top)))
    return 4 if lead in (2, 4) else 5


def _grid(top: float, y: Callable[[float], float], unit: Callable[[float], str]) -> str:
    lines = []
    steps = _steps(top)
    for step in range(steps + 1):
        value = top * step / steps
        py = y(value)
        lines.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{py:.1f}" '
                     f'y2="{py:.1f}" class="grid"/>'
                     f'<text x="{PAD_LEFT - 6}" y="{py + 4:.1f}" class="tick" '
                     f'text-anchor="end">{escape(unit(value))}</text>')
    return "".join(lines)


def _time_axis(span: float, x: Callable[[float], float], end: float) -> str:
    labels = []
    for fraction in (0.0, 1 / 3, 2 / 3, 1.0):
        at = end - span + span * fraction
        ago = span * (1 - fraction)
        text = "now" if ago < 1 else f"-{ago / 60:.0f}m" if ago >= 60 else f"-{ago:.0f}s"
        anchor = "end" if fraction == 1.0 else "start" if fraction == 0 else "middle"
        labels.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 6}" class="tick" '
                      f'text-anchor="{anchor}">{text}</text>')
    return "".join(labels)


def _line(series: Series, x: Callable[[float], float], y: Callable[[float], float],
          colour: str) -> str:
    paths: list[list[str]] = []
    current: list[str] = []
    for t, v in series.points:
        if v is None:
            if current:
                paths.append(current)
            current = []
            continue
        current.append(f"{x(t):.1f},{y(v):.1f}")
    if current:
        paths.append(current)
    out = []
    for points in paths:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
        else:
            out.append(f'<polyline points="{" ".join(points)}" fill="none" '
                       f'stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>')
    return "".join(out)


def _legend(series: Sequence[Series]) -> str:
    items = []
    for index, s in enumerate(series[:len(PALETTE)]):
        items.append(f'<li><span class="swatch" style="background:{_colour(s, index)}"></span>'
                     f'{escape(s.name)}</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def _summary(title: str, series: Sequence[Series], unit: Callable[[float], str]) -> str:
    latest = []
    for s in series:
        values = [v for _, v in s.points if v is not None]
        if values:
            latest.append(f"{s.name} {unit(values[-1])}")
    return f"{title}: latest " + ", ".join(latest)


def _frame(title: str, body: str, legend: str, summary: str) -> Markup:
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}"><title>{escape(summary)}</title>{body}</svg>'
        f'{legend}</figure>')


def _empty(title: str, text: str) -> Markup:
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<div class="chart-empty">{escape(text)}</div></figure>')


# --- units ------------------------------------------------------------------------------------


def count(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def seconds(value: float) -> str:
    if value == 0:
        return "0"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.1f}s" if value < 60 else f"{value / 60:.1f}m"


def sparkline(label: str, values: Sequence[float], width: int = 120, height: int = 28,
              cut: bool = False) -> Markup:
    """A tiny trend line (no axes) for a table cell; its label says the latest value. With
    `cut`, a spike is cut at the top as in line_chart (its peak is still in the label)."""
    if len(values) < 2:
        return Markup('<span class="muted">\u2013</span>')
    top = (spike_free_top(values) if cut else max(values)) or 1.0
    text = escape(f"{label}: now {count(values[-1])}, peak {count(max(values))}")
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (min(v, top) / top) * (height - 4):.1f}"
                      for i, v in enumerate(values))
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{text}"><title>{text}</title>'
        f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>'
        f'</svg>')
