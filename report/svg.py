"""Hand-written SVG charts for the report: no script, no font, nothing fetched, so the page opens
offline anywhere. Every mark carries its number (``data-value``) so tests can read the page back."""

from __future__ import annotations

from html import escape

PALETTE = ("#3b6fb6", "#e07b39", "#4a9c5d", "#b84a62", "#7c5cb0", "#8c8c3c", "#3ca6a6", "#a0522d")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def bar_chart(title: str, chart: str, bars: list[tuple[str, float, str]], unit: str = "") -> str:
    """Horizontal bars: (label, value, note written after the value, e.g. '20.0x')."""
    height, left, width = 26 * len(bars) + 34, 190, 620
    top = max((v for _, v, _ in bars), default=0) or 1
    rows = []
    for k, (label, value, note) in enumerate(bars):
        y = 28 + 26 * k
        w = max(1.0, (width - left - 190) * value / top)
        rows.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect data-chart="{chart}" data-label="{escape(label)}" data-value="{value!r}" x="{left}" y="{y}" '
            f'width="{w:.1f}" height="18" fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 14}">{_fmt(value)} {escape(unit)}'
            f'{" · " + escape(note) if note else ""}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>{"".join(rows)}</svg>')


def grouped_bars(title: str, chart: str, groups: list[str], series: dict[str, list[float | None]]) -> str:
    """Vertical bars, one group per label (e.g. a class) and one bar per series (e.g. a run)."""
    names = list(series)
    slot, bar = 30, max(4, 24 // max(1, len(names)))
    width, height, base = 60 + slot * len(groups) + 10, 300, 220
    marks = [f'<line x1="50" y1="{base}" x2="{width}" y2="{base}" stroke="#999"/>']
    for tick in (0, 25, 50, 75, 100):
        y = base - 2 * tick
        marks.append(f'<text x="44" y="{y + 4}" text-anchor="end">{tick}</text>'
                     f'<line x1="50" y1="{y}" x2="{width}" y2="{y}" stroke="#eee"/>')
    for g, group in enumerate(groups):
        x0 = 56 + slot * g
        for s, name in enumerate(names):
            value = series[name][g]
            if value is None:
                continue
            h = 2 * value
            marks.append(f'<rect data-chart="{chart}" data-label="{escape(group)}" data-series="{escape(name)}" '
                         f'data-value="{value!r}" x="{x0 + s * bar}" y="{base - h:.1f}" width="{bar - 1}" '
                         f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)} {escape(group)}'
                         f' {value:.2f}</title></rect>')
        marks.append(f'<text transform="translate({x0 + 8},{base + 8}) rotate(60)">{escape(group)}</text>')
    legend = "".join(f'<rect x="{60 + 150 * s}" y="26" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>'
                     f'<text x="{74 + 150 * s}" y="35">{escape(name)}</text>' for s, name in enumerate(names))
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>{legend}{"".join(marks)}</svg>')


def line_chart(title: str, chart: str, series: dict[str, list[float]], marks: dict[str, int] | None = None,
               y_label: str = "") -> str:
    """Lines over epochs (1, 2, ...); ``marks`` puts a dot on a series' chosen epoch (the best)."""
    width, height, left, top, bottom = 620, 240, 50, 40, 200
    values = [v for vs in series.values() for v in vs if v == v]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    epochs = max((len(v) for v in series.values()), default=1)

    def xy(k: int, v: float) -> tuple[float, float]:
        return (left + (width - left - 10) * (k / max(1, epochs - 1)), bottom - (bottom - top) * (v - lo) / (hi - lo))

    parts = [f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#999"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{_fmt(hi)}</text>',
             f'<text x="{left - 6}" y="{bottom + 4}" text-anchor="end">{_fmt(lo)}</text>',
             f'<text x="{width - 10}" y="{bottom + 16}" text-anchor="end">epoch {epochs}</text>',
             f'<text x="{left}" y="{bottom + 16}">1</text>',
             f'<text x="{left}" y="{top - 8}">{escape(y_label)}</text>']
    for s, (name, vs) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        points = " ".join("{:.1f},{:.1f}".format(*xy(k, v)) for k, v in enumerate(vs) if v == v)
        parts.append(f'<polyline data-chart="{chart}" data-series="{escape(name)}" '
                     f'data-values="{",".join(repr(float(v)) for v in vs)}" points="{points}" fill="none" '
                     f'stroke="{colour}" stroke-width="1.5"/>')
        best = (marks or {}).get(name)
        if best:
            x, y = xy(best - 1, vs[best - 1])
            parts.append(f'<circle data-chart="{chart}-best" data-series="{escape(name)}" data-value="{best}" '
                         f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>best epoch {best}</title></circle>')
    legend = "".join(f'<text x="{left + 10 + 160 * s}" y="{height - 8}" fill="{PALETTE[s % len(PALETTE)]}">'
                     f'{escape(name)}</text>' for s, name in enumerate(list(series)[:4]))
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>{"".join(parts)}{legend}</svg>')


def pr_chart(title: str, chart: str, curves: dict[str, tuple[list[float], list[float]]]) -> str:
    """Precision against recall, one line per run."""
    size, pad = 180, 24
    parts = [f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>']
    for s, (name, (recall, precision)) in enumerate(curves.items()):
        points = " ".join(f"{pad + size * r:.1f},{pad + size * (1 - p):.1f}" for r, p in zip(recall, precision))
        parts.append(f'<polyline data-chart="{chart}" data-series="{escape(name)}" data-points="{len(recall)}" '
                     f'points="{points}" fill="none" stroke="{PALETTE[s % len(PALETTE)]}" stroke-width="1.5"/>')
    return (f'<svg viewBox="0 0 {size + 2 * pad} {size + 2 * pad}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<text x="{pad}" y="16">{escape(title)}</text>{"".join(parts)}</svg>')


def heatmap(title: str, chart: str, labels: list[str], matrix: list[list[float]]) -> str:
    """A square matrix (class co-occurrence) as shaded cells, the value in each cell's title."""
    n, cell, left, top = len(labels), 22, 100, 110
    peak = max((v for row in matrix for v in row), default=0) or 1
    parts = []
    for i, name in enumerate(labels):
        parts.append(f'<text x="{left - 4}" y="{top + cell * i + 15}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<text transform="translate({left + cell * i + 15},{top - 4}) rotate(-60)">{escape(name)}</text>')
        for j, value in enumerate(matrix[i]):
            shade = int(245 - 200 * (value / peak) ** 0.5)
            parts.append(f'<rect data-chart="{chart}" data-label="{escape(name)}|{escape(labels[j])}" '
                         f'data-value="{value!r}" x="{left + cell * j}" y="{top + cell * i}" width="{cell - 1}" '
                         f'height="{cell - 1}" fill="rgb({shade},{shade},255)"><title>{escape(name)} + '
                         f'{escape(labels[j])}: {value:g}</title></rect>')
    width, height = left + cell * n + 70, top + cell * n + 10
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>{"".join(parts)}</svg>')
