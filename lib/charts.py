"""Small charts drawn on the server as SVG: no script, nothing from another site, so the
pages' content security policy stays as it is. Each chart comes with its numbers as a table
(the text alternative) from the same data.

Colours are set as SVG attributes, not styles (the policy allows no inline style).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape

# Distinguishable, and readable on white, in this order (the last: everything else).
PALETTE = ("#3559d6", "#1f9d74", "#c9731d", "#8f4fc8", "#d14b6b", "#8a94a6")
WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 56, 24, 8


@dataclass
class Series:
    label: str
    values: list[float]
    colour: str = ""


@dataclass
class StackedChart:
    """Bars per day, each split by series (providers, models, outcomes)."""

    title: str
    days: list[date]
    series: list[Series]
    unit: str = ""  # "$" before the values, or nothing
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(value for s in self.series for value in s.values)

    def totals(self) -> list[float]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.days))]

    def svg(self) -> str:
        """The chart; its numbers are in ``rows()`` for the table beside it."""
        totals = self.totals()
        top = _nice_ceiling(max(totals, default=0))
        plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
        step = plot_w / max(len(self.days), 1)
        bar = max(step * 0.7, 1)
        parts = [
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(self.title)}" preserveAspectRatio="xMinYMin meet" '
            'xmlns="http://www.w3.org/2000/svg">'
        ]
        for tick in range(0, 5):  # the value axis: 0 to top, in quarters
            value = top * tick / 4
            y = TOP + plot_h - plot_h * tick / 4
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>'
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="13" '
                f'fill="#5b6577">{escape(self._value(value))}</text>'
            )
        for i, day in enumerate(self.days):
            x = LEFT + i * step + (step - bar) / 2
            y = TOP + plot_h
            for s in self.series:
                value = s.values[i]
                if not value or not top:
                    continue
                height = plot_h * value / top
                y -= height
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                    f'fill="{s.colour}"><title>'
                    f"{escape(f'{day:%d %b}: {s.label} {self._value(value)}')}</title></rect>"
                )
            if len(self.days) <= 10 or i % max(len(self.days) // 7, 1) == 0:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
                    f'font-size="13" fill="#5b6577">{day:%d %b}</text>'
                )
        parts.append("</svg>")
        return "".join(parts)

    def rows(self) -> list[tuple[date, list[str], str]]:
        """Per day: each series' value and the total, as the table shows them."""
        totals = self.totals()
        return [
            (day, [self._value(s.values[i]) for s in self.series], self._value(totals[i]))
            for i, day in enumerate(self.days)
        ]

    def _value(self, value: float) -> str:
        if self.unit == "$":
            return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"
        return f"{value:,.0f}"


def stacked(
    title: str,
    days: list[date],
    by_day: Mapping[tuple[date, str], float | Decimal],
    *,
    unit: str = "",
    most: int = 5,
) -> StackedChart:
    """A chart of ``by_day`` ((day, label) -> value): the ``most`` largest labels, the rest
    together as "other"."""
    sums: dict[str, float] = {}
    for (_, label), value in by_day.items():
        sums[label] = sums.get(label, 0.0) + float(value or 0)
    ranked = sorted((label for label in sums if sums[label]), key=lambda n: (-sums[n], n))
    shown, rest = ranked[:most], ranked[most:]
    series = [
        Series(label, [float(by_day.get((day, label)) or 0) for day in days], PALETTE[i])
        for i, label in enumerate(shown)
    ]
    if rest:
        series.append(
            Series(
                f"{len(rest)} other{'s' if len(rest) > 1 else ''}",
                [sum(float(by_day.get((day, label)) or 0) for label in rest) for day in days],
                PALETTE[-1],
            )
        )
    return StackedChart(title, days, series, unit)


def _nice_ceiling(value: float) -> float:
    """A round number at or above ``value`` for the axis (1, 2, 2.5, 5 times a power of 10)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5):
        if value <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power
