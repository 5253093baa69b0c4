"""The figure the sweep's leaderboard and the report both draw, from rows, so that failed runs never break it.

Pages embed plotly.js inline: the machines that open them may have no internet.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sequential

from geosweep.comparison.rows import Row

MISSING_COLOR = "#b0b0b0"
STATUS_ORDER = ("finished", "stopped early", "running", "failed")


def finite(value: Any) -> float | None:
    """`value` as a float, or None when it is missing, not a number, NaN or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def category_dimension(label: str, values: list[Any], order: tuple[str, ...] = ()) -> dict:
    """A parallel-coordinates axis with one tick per distinct value (missing values read "-")."""
    texts = ["-" if v is None else str(v) for v in values]
    ticks = [t for t in order if t in texts] + sorted(set(texts) - set(order))
    index = {text: i for i, text in enumerate(ticks)}
    return {
        "label": label,
        "values": [index[t] for t in texts],
        "tickvals": list(range(len(ticks))),
        "ticktext": ticks,
        "range": [-0.5, len(ticks) - 0.5],
    }


def axis_dimension(label: str, values: list[Any]) -> dict:
    """A numeric axis when every value is a number (log10 when they span two decades), else a categorical one."""
    numbers = [finite(v) for v in values]
    if any(n is None for n in numbers) or any(isinstance(v, bool) for v in values):
        return category_dimension(label, values)
    if min(numbers) > 0 and max(numbers) / min(numbers) >= 100:  # e.g. a loguniform learning rate
        return {"label": f"log10({label})", "values": [math.log10(n) for n in numbers]}
    return {"label": label, "values": numbers}


def parallel_coordinates(rows: list[Row], axes: list[str], metric: str, mode: str, title: str = "") -> go.Figure:
    """One line per row over `axes`, its status (when the rows' differ) and `metric`, coloured by the metric.

    A row without a finite `metric` (it failed, or has not reported yet) sits below
    the metric axis's range on a "missing" tick, drawn grey.

    Args:
        rows: the runs.
        axes: keys of the rows' `axes` to draw, in order.
        metric: the metric axis and colour.
        mode: "max" or "min" (which end of `metric` is best, drawn bright).
        title: the figure's title.
    """
    values = [finite(row.metrics.get(metric)) for row in rows]
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    span = (high - low) or 1.0  # one value (or none): an axis of width 1 above it
    top, missing_at = low + span, low - 0.2 * span  # missing: below every real value, with a visible gap
    ticks = [low + span * i / 4 for i in range(5)] if present else []
    tickvals, ticktext = ticks, [f"{t:.3g}" for t in ticks]
    if len(present) < len(values):
        tickvals, ticktext = tickvals + [missing_at], ticktext + ["missing"]
    metric_axis = {
        "label": metric,
        "values": [missing_at if v is None else v for v in values],
        "range": [missing_at, top],
        "tickvals": tickvals,
        "ticktext": ticktext,
    }
    # Grey for the missing tick, then viridis (bright = best) over the real range.
    shades = list(sequential.Viridis if mode == "max" else reversed(sequential.Viridis))
    cut = (low - missing_at) / (top - missing_at) / 2  # halfway between the missing tick and the lowest value
    colorscale = [[0.0, MISSING_COLOR], [cut, MISSING_COLOR]]
    # (1 - t) cut + t: the last stop is exactly 1, as plotly requires (cut + (1 - cut) t can round above it)
    stops = [i / (len(shades) - 1) for i in range(len(shades))]
    colorscale += [[(1 - t) * cut + t, shade] for t, shade in zip(stops, shades, strict=True)]
    dimensions = [axis_dimension(axis, [row.axes.get(axis) for row in rows]) for axis in axes]
    statuses = [row.status for row in rows]
    if len(set(statuses)) > 1:  # like the axes: one that every line crosses at the same tick says nothing
        dimensions.append(category_dimension("status", statuses, STATUS_ORDER))
    dimensions.append(metric_axis)
    figure = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line={
                "color": metric_axis["values"],
                "colorscale": colorscale,
                "cmin": missing_at,
                "cmax": top,
                "showscale": False,
            },
        )
    )
    figure.update_layout(
        title=f"{title}: {len(rows)} runs, {metric} ({mode})" if title else None, margin={"l": 160, "r": 80}
    )
    return figure


def standalone_html(figure: go.Figure) -> str:
    """A whole HTML page holding the figure and plotly.js itself (no CDN)."""
    return figure.to_html(include_plotlyjs=True, full_html=True)
