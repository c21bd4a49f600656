"""Bar charts as plain numbers for an SVG template (``admin/feedback/_bar_chart.html``): no script, no inline
style, so the site's CSP has nothing to block; colours come from classes in ``feedback/dashboard.css``."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 360, 170
LABEL_ROOM = 28  # below the bars, for the labels
TOP_ROOM = 16  # above the tallest bar, for its value
SIDE_ROOM = 18  # left and right, so that the outer labels are not cut
BAR_MAX = 56


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar ("" where labels are thinned out)
    full_label: str  # in the bar's tooltip
    value: float
    shown: str  # the value as written above the bar
    x: float
    y: float
    width: float
    height: float
    label_x: float
    value_y: float
    css: str = "dash-bar"


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - LABEL_ROOM
    label_y: float = HEIGHT - 8

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"


def bar_chart(title: str, points: list[tuple[str, float]], *, percent: bool = False, every: int = 1) -> Chart:
    """Vertical bars for ``(label, value)`` points; ``percent`` draws values in 0..1 as percentages on a 0-100%
    scale; ``every`` keeps one label in that many (the others stay in each bar's tooltip)."""
    top = 1.0 if percent else max([value for _, value in points] + [1])
    room = HEIGHT - LABEL_ROOM - TOP_ROOM
    slot = (WIDTH - 2 * SIDE_ROOM) / max(len(points), 1)
    bar_width = min(slot * 0.7, BAR_MAX)
    bars = []
    for i, (label, value) in enumerate(points):
        height = room * (value / top) if top else 0.0
        middle = SIDE_ROOM + i * slot + slot / 2
        bars.append(
            Bar(
                label=label if i % every == 0 else "",
                full_label=label,
                value=value,
                shown=f"{value:.0%}" if percent else f"{value:g}",
                x=round(middle - bar_width / 2, 1),
                y=round(HEIGHT - LABEL_ROOM - height, 1),
                width=round(bar_width, 1),
                height=round(height, 1),
                label_x=round(middle, 1),
                value_y=round(HEIGHT - LABEL_ROOM - height - 4, 1),
            )
        )
    return Chart(title=title, bars=bars)
