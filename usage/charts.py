"""Server-rendered SVG charts for the admin: no JavaScript, no CDN."""

from datetime import date, timedelta
from decimal import Decimal

from django.utils.html import format_html, format_html_join

from core.display import credits_text

COLOURS = ["#417690", "#ba2121", "#79aec8", "#e5a00d", "#5b8a3a", "#8e44ad"]


def daily_usage_svg(rows: list[dict], *, days: int, today: date) -> str:
    """A grouped bar chart of credits per metric per day over the last `days` days.

    rows: [{"day": date, "label": str, "cost": Decimal}, …]
    """
    first = today - timedelta(days=days - 1)
    labels = sorted({row["label"] for row in rows})
    if not labels:
        return format_html("<p>No usage in these {} days.</p>", days)
    per_day = {(row["day"], row["label"]): row["cost"] for row in rows}
    peak = max(per_day.values()) or Decimal(1)
    width, height, pad = 720, 180, 24
    slot = (width - pad) / days
    bar = max(slot / (len(labels) + 1), 1)
    bars = []
    for index in range(days):
        day = first + timedelta(days=index)
        for n, label in enumerate(labels):
            cost = per_day.get((day, label), Decimal(0))
            if not cost:
                continue
            h = float(cost / peak) * (height - pad)
            x = pad + index * slot + n * bar
            title = f"{day:%Y-%m-%d} {label}: {credits_text(cost)} credits"
            colour = COLOURS[n % len(COLOURS)]
            bars.append((f"{x:.1f}", f"{height - pad - h:.1f}", f"{bar:.1f}", f"{h:.1f}", colour, title))
    ticks = [
        (f"{pad + i * slot:.1f}", f"{height - 6}", f"{first + timedelta(days=i):%d %b}")
        for i in range(0, days, 7)
    ]
    legend = [(COLOURS[n % len(COLOURS)], label) for n, label in enumerate(labels)]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img"'
        ' aria-label="credits per day"><text x="0" y="12" font-size="10">{} credits</text>{}{}</svg>'
        "<div>{}</div>",
        width,
        height,
        f"{peak:.2f}",
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            bars,
        ),
        format_html_join("", '<text x="{}" y="{}" font-size="10">{}</text>', ticks),
        format_html_join("", '<span style="color:{}">&#9632;</span> {} &nbsp;', legend),
    )
