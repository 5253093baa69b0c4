"""The report's own figures: accuracy vs invariance error with its Pareto front, learning curves, nightly trends.

Parallel coordinates, which the sweep's leaderboard draws too, are in geosweep.comparison.figures.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative

from geosweep.comparison.rows import Row
from geosweep.report.links import run_link


def pareto_front(points: list[tuple[float, float]], mode: str) -> set[int]:
    """Indices of the (error, score) points no other point beats: error no higher and score no worse, one strictly."""
    sign = 1 if mode == "max" else -1

    def beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
        no_worse = a[0] <= b[0] and sign * a[1] >= sign * b[1]
        return no_worse and (a[0] < b[0] or sign * a[1] > sign * b[1])

    return {i for i, p in enumerate(points) if not any(beats(q, p) for q in points)}


def pareto_scatter(
    groups: list[dict], metric: str, mode: str, error: str, address: str | None = None
) -> go.Figure | None:
    """Configurations (mean +- sample SD over seeds) by invariance error and `metric`; the Pareto front marked.

    With `address` (the MLflow UI) each point links to its configuration's first run (its customdata).

    Returns:
        The figure, or None when no configuration has both numbers.
    """
    shown = [g for g in groups if g.get(metric) and g.get(error)]
    if not shown:
        return None
    points = [(g[error].mean, g[metric].mean) for g in shown]
    front = pareto_front(points, mode)
    figure = go.Figure()
    for on_front, name, style in (
        (False, "dominated", {"color": "#7f9cc4", "size": 9}),
        (True, "Pareto front", {"color": "#d62728", "size": 13, "symbol": "star"}),
    ):
        members = sorted((i for i in range(len(shown)) if (i in front) == on_front), key=lambda i: points[i][0])
        figure.add_scatter(
            x=[points[i][0] for i in members],
            y=[points[i][1] for i in members],
            name=name,
            mode="lines+markers" if on_front else "markers",
            marker=style,
            line={"dash": "dot"},
            error_x={"array": [shown[i][error].sd for i in members]},  # NaN (no bar) for one seed
            error_y={"array": [shown[i][metric].sd for i in members]},
            text=[shown[i]["configuration"] for i in members],
            customdata=[run_link(address, shown[i]["rows"][0]) for i in members],
            hovertemplate="%{text}<br>%{x:.3g}, %{y:.3g}" + ("<br>click: its first run in MLflow" if address else ""),
        )
    log_x = all(p[0] > 0 for p in points)  # exact invariance (0) cannot sit on a log axis
    figure.update_layout(
        title=f"{metric} vs {error} (mean +- sample SD over seeds)",
        xaxis_title=f"{error} (lower is better)",
        yaxis_title=metric,
        xaxis_type="log" if log_x else "linear",
    )
    return figure


def learning_curves(
    curves: dict[str, list[tuple[Row, list[int], list[float]]]], metric: str, address: str | None = None
) -> go.Figure:
    """`metric` per epoch, one line per run, one colour per configuration.

    Args:
        curves: configuration -> [(run's row, steps, values)].
        metric: the metric the curves show.
        address: the MLflow UI: each point links to its run there (its customdata); None for no links.
    """
    figure = go.Figure()
    palette = qualitative.Plotly
    for i, (configuration, runs) in enumerate(sorted(curves.items())):
        for j, (row, steps, values) in enumerate(runs):
            figure.add_scatter(
                x=steps,
                y=values,
                mode="lines+markers",
                name=configuration or "(one configuration)",
                legendgroup=configuration,
                showlegend=j == 0,
                line={"color": palette[i % len(palette)]},
                customdata=[run_link(address, row)] * len(steps),
                hovertemplate=f"{row.run_name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
            )
    last = max((max(steps, default=1) for runs in curves.values() for _, steps, _ in runs), default=1)
    figure.update_layout(
        title=f"{metric} per epoch",
        yaxis_title=metric,
        legend={"font": {"size": 10}},
        xaxis={"title": "epoch", "dtick": max(1, math.ceil(last / 10))},  # whole epochs only
    )
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
                x=[d for d, _ in points],
                y=[v for _, v in points],
                name=entry,
                mode="lines+markers",
                visible=metric == shown,
                hovertemplate=f"{entry}<br>%{{x}}: %{{y:.4g}}<extra>{metric}</extra>",
            )
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
        title="Nightly benchmark",
        yaxis_title=shown,
        xaxis={"title": "date", "type": "category", "categoryorder": "array", "categoryarray": dates},
        updatemenus=[{"buttons": buttons, "active": metrics.index(shown), "x": 1.0, "xanchor": "right", "y": 1.15}],
    )
    return figure
