"""Charts as geometry for inline SVG: horizontal grouped bars, drawn by ``charts.html``.

Only numbers and labels are computed here; the template writes the SVG, so every
label passes through the same autoescaping as the rest of the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABEL_WIDTH = 150
PLOT_WIDTH = 420
VALUE_WIDTH = 70
BAR_HEIGHT = 14
BAR_GAP = 3
GROUP_GAP = 12
TOP = 8


@dataclass(frozen=True)
class Bar:
    series: int  # index into the chart's series (its CSS class is ``bar-<series>``)
    y: float
    width: float
    value: str  # the figure written at the bar's end


@dataclass(frozen=True)
class Group:
    label: str
    y: float  # baseline of the label
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    """A horizontal grouped bar chart: one group per category, one bar per series."""

    title: str
    description: str
    series: list[str]
    groups: list[Group]
    width: int
    height: int
    label_width: int = LABEL_WIDTH
    ticks: list[tuple[float, str]] = field(default_factory=list)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bars(title: str, description: str, series: list[str], rows: list[tuple[str, list[float]]],
         scale_max: float | None = None, ticks: int = 4, suffix: str = "") -> Chart:
    """A chart of ``rows`` (category label, one value per series), scaled to ``scale_max`` or the largest value."""
    top = max([scale_max or 0.0, *(v for _, values in rows for v in values)]) or 1.0
    if float(top).is_integer() and top < ticks:  # counts: no tick between whole numbers
        ticks = int(top)
    groups = []
    y = float(TOP)
    for label, values in rows:
        group_bars = []
        for i, value in enumerate(values):
            width = PLOT_WIDTH * min(max(value, 0.0), top) / top
            group_bars.append(Bar(i, y + i * (BAR_HEIGHT + BAR_GAP), round(width, 1), _figure(value) + suffix))
        height = len(values) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
        groups.append(Group(label, y + height / 2 + 4, group_bars))
        y += height + GROUP_GAP
    marks = [(round(PLOT_WIDTH * k / ticks, 1), _figure(top * k / ticks) + suffix) for k in range(ticks + 1)]
    return Chart(title, description, series, groups, LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH,
                 int(y + 16), ticks=marks)


def competency_chart(profile: dict[str, object]) -> Chart:
    """Required and acquired FRAC levels (1..5) per competency; gaps are where acquired falls short."""
    required = profile.get("required") or {}
    acquired = profile.get("acquired") or {}
    assert isinstance(required, dict) and isinstance(acquired, dict)
    ids = sorted(set(required) | set(acquired))
    rows = [(str(c), [float(required.get(c, 0)), float(acquired.get(c, 0))]) for c in ids]
    gaps = profile.get("gaps") or {}
    assert isinstance(gaps, dict)
    text = ", ".join(f"{c}: requires {required.get(c, 0)}, has {acquired.get(c, 0)}" for c in ids)
    gap_text = ", ".join(f"{c} short by {n}" for c, n in sorted(gaps.items())) or "no gaps"
    return bars("Competency levels: required by the post and acquired", f"{text}. {gap_text}.",
                ["required", "acquired"], rows, scale_max=5.0, ticks=5)
