"""A stacked column chart drawn as inline SVG on the server: no JavaScript, no chart library,
and it prints, scales on a phone and reads the same with CSS off."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# One colour per channel, distinguishable for common colour-vision deficiencies (Okabe-Ito).
COLOURS = {
    "store": "#0072B2",
    "api": "#E69F00",
    "portal": "#009E73",
    "console": "#CC79A7",
    "shopify": "#56B4E9",
    "amazon": "#D55E00",
    "tiktok": "#000000",
}
W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 26


def _n(value: float) -> str:
    # format_html escapes its arguments into strings, so numbers are formatted first.
    return f"{value:.1f}"


def colour(source: str) -> str:
    return COLOURS.get(source, "#777777")


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 × 10^n at or above ``value``, so the axis reads in round numbers."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def stacked_columns(series: dict, *, title: str) -> SafeString:
    days, sources = series["days"], series["sources"]
    peak = _nice_max(max([sum(v.values()) for _, v in days] + [1]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    col_w = plot_w / max(len(days), 1)
    parts = []
    for frac in (0, 0.5, 1):  # grid lines with their values
        y = TOP + plot_h * (1 - frac)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
                '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>',
                LEFT,
                W - RIGHT,
                _n(y),
                _n(y),
                LEFT - 6,
                _n(y + 4),
                f"{int(peak * frac):,}",
            )
        )
    for i, (day, values) in enumerate(days):
        x = LEFT + i * col_w
        base = TOP + plot_h
        for source in sources:
            points = values.get(source, 0)
            if not points:
                continue
            h = plot_h * points / peak
            base -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} · {}: {} pts</title></rect>",
                    _n(x + 1),
                    _n(base),
                    _n(max(col_w - 2, 1)),
                    _n(h),
                    colour(source),
                    day.strftime("%b %-d"),
                    source,
                    f"{points:,}",
                )
            )
        last = i == len(days) - 1
        if (len(days) - 1 - i) % 7 == 0:  # one date a week, counted back from today
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="axis" text-anchor="{}">{}</text>',
                    _n(x + col_w if last else x + col_w / 2),
                    H - 8,
                    "end" if last else "middle",
                    day.strftime("%b %-d"),
                )
            )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="chart-title">'
        '<title id="chart-title">{}</title>{}</svg>',
        W,
        H,
        title,
        format_html_join("", "{}", ((p,) for p in parts)),
    )
