"""Plotly figures of a sweep or experiment, built from plain rows so that failed runs never break them.

A row is one trial or run: `sampled` (axis -> value), `status` ("finished",
"stopped early", "failed", "running") and `metrics` (name -> latest value).
Pages embed plotly.js inline: the machines that open them may have no internet.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative, sequential

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
        "label": label, "values": [index[t] for t in texts], "tickvals": list(range(len(ticks))),
        "ticktext": ticks, "range": [-0.5, len(ticks) - 0.5],
    }  # fmt: skip


def axis_dimension(label: str, values: list[Any]) -> dict:
    """A numeric axis when every value is a number (log10 when they span two decades), else a categorical one."""
    numbers = [finite(v) for v in values]
    if any(n is None for n in numbers) or any(isinstance(v, bool) for v in values):
        return category_dimension(label, values)
    if min(numbers) > 0 and max(numbers) / min(numbers) >= 100:  # e.g. a loguniform learning rate
        return {"label": f"log10({label})", "values": [math.log10(n) for n in numbers]}
    return {"label": label, "values": numbers}


def parallel_coordinates(rows: list[dict], axes: list[str], metric: str, mode: str, title: str = "") -> go.Figure:
    """One line per row over `axes`, its status and `metric`, coloured by the metric.

    A row without a finite `metric` (it failed, or has not reported yet) sits below
    the metric axis's range on a "missing" tick, drawn grey.

    Args:
        rows: trials or runs (see the module docstring).
        axes: keys of `sampled` to draw, in order.
        metric: the metric axis and colour; mode: "max" or "min" (which end is best, drawn bright).
        title: the figure's title.
    """
    values = [finite(row["metrics"].get(metric)) for row in rows]
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    span = (high - low) or 1.0  # one value (or none): an axis of width 1 above it
    top, missing_at = low + span, low - 0.2 * span  # missing: below every real value, with a visible gap
    ticks = [low + span * i / 4 for i in range(5)] if present else []
    tickvals, ticktext = ticks, [f"{t:.3g}" for t in ticks]
    if len(present) < len(values):
        tickvals, ticktext = tickvals + [missing_at], ticktext + ["missing"]
    metric_axis = {
        "label": metric, "values": [missing_at if v is None else v for v in values],
        "range": [missing_at, top], "tickvals": tickvals, "ticktext": ticktext,
    }  # fmt: skip
    # Grey for the missing tick, then viridis (bright = best) over the real range.
    shades = list(sequential.Viridis if mode == "max" else reversed(sequential.Viridis))
    cut = (low - missing_at) / (top - missing_at) / 2  # halfway between the missing tick and the lowest value
    colorscale = [[0.0, MISSING_COLOR], [cut, MISSING_COLOR]]
    colorscale += [[cut + (1 - cut) * i / (len(shades) - 1), c] for i, c in enumerate(shades)]
    dimensions = [axis_dimension(axis, [row["sampled"].get(axis) for row in rows]) for axis in axes]
    dimensions.append(category_dimension("status", [row["status"] for row in rows], STATUS_ORDER))
    dimensions.append(metric_axis)
    figure = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line={"color": metric_axis["values"], "colorscale": colorscale, "cmin": missing_at, "cmax": top, "showscale": False},
    ))  # fmt: skip
    figure.update_layout(
        title=f"{title}: {len(rows)} runs, {metric} ({mode})" if title else None, margin={"l": 160, "r": 80}
    )
    return figure


def pareto_front(points: list[tuple[float, float]], mode: str) -> set[int]:
    """Indices of the (error, score) points no other point beats: error no higher and score no worse, one strictly."""
    sign = 1 if mode == "max" else -1

    def beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
        no_worse = a[0] <= b[0] and sign * a[1] >= sign * b[1]
        return no_worse and (a[0] < b[0] or sign * a[1] > sign * b[1])

    return {i for i, p in enumerate(points) if not any(beats(q, p) for q in points)}


def pareto_scatter(groups: list[dict], metric: str, mode: str, error: str) -> go.Figure | None:
    """Configurations (mean +- std over seeds) by invariance error and `metric`; the Pareto front marked.

    Returns:
        The figure, or None when no configuration has both numbers.
    """
    shown = [g for g in groups if g.get(metric) and g.get(error)]
    if not shown:
        return None
    points = [(g[error][0], g[metric][0]) for g in shown]
    front = pareto_front(points, mode)
    figure = go.Figure()
    for on_front, name, style in ((False, "dominated", {"color": "#7f9cc4", "size": 9}),
                                  (True, "Pareto front", {"color": "#d62728", "size": 13, "symbol": "star"})):  # fmt: skip
        members = sorted((i for i in range(len(shown)) if (i in front) == on_front), key=lambda i: points[i][0])
        figure.add_scatter(
            x=[points[i][0] for i in members], y=[points[i][1] for i in members], name=name,
            mode="lines+markers" if on_front else "markers", marker=style, line={"dash": "dot"},
            error_x={"array": [shown[i][error][1] for i in members]},
            error_y={"array": [shown[i][metric][1] for i in members]},
            text=[shown[i]["configuration"] for i in members], hovertemplate="%{text}<br>%{x:.3g}, %{y:.3g}",
        )  # fmt: skip
    log_x = all(p[0] > 0 for p in points)  # exact invariance (0) cannot sit on a log axis
    figure.update_layout(
        title=f"{metric} vs {error} (mean +- std over seeds)", xaxis_title=f"{error} (lower is better)",
        yaxis_title=metric, xaxis_type="log" if log_x else "linear",
    )  # fmt: skip
    return figure


def learning_curves(curves: dict[str, list[tuple[str, list[int], list[float]]]], metric: str) -> go.Figure:
    """`metric` per epoch, one line per run, one colour per configuration.

    Args:
        curves: configuration -> [(run name, steps, values)].
    """
    figure = go.Figure()
    palette = qualitative.Plotly
    for i, (configuration, runs) in enumerate(sorted(curves.items())):
        for j, (run_name, steps, values) in enumerate(runs):
            figure.add_scatter(
                x=steps, y=values, mode="lines+markers", name=configuration or "(one configuration)",
                legendgroup=configuration, showlegend=j == 0, line={"color": palette[i % len(palette)]},
                hovertemplate=f"{run_name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
            )  # fmt: skip
    last = max((max(steps, default=1) for runs in curves.values() for _, steps, _ in runs), default=1)
    figure.update_layout(
        title=f"{metric} per epoch", yaxis_title=metric, legend={"font": {"size": 10}},
        xaxis={"title": "epoch", "dtick": max(1, math.ceil(last / 10))},  # whole epochs only
    )  # fmt: skip
    return figure


def nightly_trends(series: dict[str, dict[str, list[tuple[str, float]]]], first: str | None = None) -> go.Figure:
    """Each tracked metric over nightly dates, one line per suite entry; a menu picks the metric.

    Args:
        series: metric -> entry -> [(YYYY-MM-DD, value)] sorted by date.
        first: the metric shown when the page opens (default: the first by name).
    """
    metrics = sorted(series)
    shown = first if first in series else metrics[0]
    dates = sorted({date for by_entry in series.values() for points in by_entry.values() for date, _ in points})
    figure = go.Figure()
    owner: list[str] = []
    for metric in metrics:
        for entry, points in sorted(series[metric].items()):
            figure.add_scatter(
                x=[d for d, _ in points], y=[v for _, v in points], name=entry, mode="lines+markers",
                visible=metric == shown, hovertemplate=f"{entry}<br>%{{x}}: %{{y:.4g}}<extra>{metric}</extra>",
            )  # fmt: skip
            owner.append(metric)
    buttons = [
        {
            "label": m,
            "method": "update",
            "args": [{"visible": [o == m for o in owner]}, {"yaxis": {"title": {"text": m}}}],
        }
        for m in metrics
    ]
    figure.update_layout(
        # Dates as categories: one tick per night (a date axis ticks every few hours). The order is given as an
        # array: plotly.js's "category ascending" raises on hidden traces.
        title="Nightly benchmark", yaxis_title=shown,
        xaxis={"title": "date", "type": "category", "categoryorder": "array", "categoryarray": dates},
        updatemenus=[{"buttons": buttons, "active": metrics.index(shown), "x": 1.0, "xanchor": "right", "y": 1.15}],
    )  # fmt: skip
    return figure


def standalone_html(figure: go.Figure) -> str:
    """A whole HTML page holding the figure and plotly.js itself (no CDN)."""
    return figure.to_html(include_plotlyjs=True, full_html=True)
