"""Figures from hand-made rows: failed, stopped and NaN trials never break them."""

import math
import re

import pytest

from geosweep.report.figures import nightly_trends, parallel_coordinates, pareto_front, pareto_scatter, standalone_html
from geosweep.sweep.leaderboard import group_rows, result_columns, varying_axes


def row(representation, lr, seed, status="finished", **metrics):
    return {"sampled": {"representation": representation, "optimizer.lr": lr, "seed": seed, "epochs": 3},
            "status": status, "seconds": 10.0, "metrics": metrics, "error": "boom" if status == "failed" else ""}  # fmt: skip


ROWS = [
    row("{name: raw}", 1e-2, 0, val_acc=0.9, **{"invariance/max_logit_diff": 3.0}),
    row("{name: raw}", 1e-2, 1, val_acc=0.8, **{"invariance/max_logit_diff": 2.0}),
    row("{name: tinv_mds}", 1e-4, 0, val_acc=0.7, **{"invariance/max_logit_diff": 1e-6}),
    row("{name: fa}", 1e-3, 0, status="stopped early", val_acc=0.5, **{"invariance/max_logit_diff": 1e-7}),
    row("{name: fa}", 1e-3, 1, status="failed"),  # raised before its first epoch: no metrics at all
    row("{name: tinv_mds}", 1e-4, 1, status="failed", val_acc=math.nan),  # diverged
]


def dimension(figure, label):
    return next(d for d in figure.data[0].dimensions if d.label == label)


def test_parallel_coordinates_draws_every_trial_and_puts_failed_ones_on_a_missing_tick():
    axes = varying_axes(ROWS)
    assert axes == ["optimizer.lr", "representation"]  # not the seed, not the constant epochs
    figure = parallel_coordinates(ROWS, axes, "val_acc", "max", title="t")

    assert [d.label for d in figure.data[0].dimensions] == [
        "log10(optimizer.lr)",
        "representation",
        "status",
        "val_acc",
    ]
    lr = dimension(figure, "log10(optimizer.lr)")
    assert list(lr.values) == pytest.approx([-2, -2, -4, -3, -3, -4])
    representation = dimension(figure, "representation")
    assert list(representation.ticktext) == ["{name: fa}", "{name: raw}", "{name: tinv_mds}"]
    assert [representation.ticktext[v] for v in representation.values] == [r["sampled"]["representation"] for r in ROWS]
    status = dimension(figure, "status")
    assert list(status.ticktext) == ["finished", "stopped early", "failed"]

    metric = dimension(figure, "val_acc")
    missing = metric.tickvals[list(metric.ticktext).index("missing")]
    assert list(metric.values[:4]) == [0.9, 0.8, 0.7, 0.5]
    assert list(metric.values[4:]) == [missing, missing] and missing < 0.5
    assert all(math.isfinite(v) for v in metric.values)
    assert list(figure.data[0].line.color) == list(metric.values)
    assert figure.data[0].line.colorscale[0][1] == figure.data[0].line.colorscale[1][1]  # the missing band is grey


def test_parallel_coordinates_survives_a_sweep_where_every_trial_failed_or_none_reported():
    failed = [row("{name: raw}", 1e-2, 0, status="failed"), row("{name: fa}", None, 0, status="failed")]
    figure = parallel_coordinates(failed, varying_axes(failed), "val_acc", "min")
    assert list(dimension(figure, "val_acc").ticktext) == ["missing"]
    assert dimension(figure, "optimizer.lr").ticktext[0] == "-"  # a missing value makes the axis categorical
    assert parallel_coordinates([], [], "val_acc", "max").data[0].dimensions[-1].label == "val_acc"


def test_standalone_html_inlines_plotly_and_loads_nothing_from_the_network():
    page = standalone_html(parallel_coordinates(ROWS, varying_axes(ROWS), "val_acc", "max"))
    assert len(page) > 1_000_000 and "Plotly.newPlot" in page  # plotly.js itself is in the page
    assert not re.search(r"<(script|link)[^>]*\b(src|href)=", page)  # no CDN script, no stylesheet


@pytest.mark.parametrize(
    ("mode", "front"),
    [("max", {0, 1, 3}), ("min", {2})],  # min: the lowest score with the lowest error wins alone
)
def test_pareto_front(mode, front):
    points = [(0.1, 0.9), (0.01, 0.8), (0.001, 0.5), (0.0001, 0.6), (0.2, 0.85)]
    if mode == "min":
        points = [(0.1, 0.9), (0.2, 0.8), (0.01, 0.1), (0.1, 0.95)]
    assert pareto_front(points, mode) == front


def test_pareto_scatter_marks_the_front_over_configurations_grouped_over_seeds():
    columns = result_columns("val_acc", {m for r in ROWS for m in r["metrics"]})
    assert columns == ["invariance/max_logit_diff"]
    groups = group_rows(ROWS, "val_acc", "max", columns)
    assert [g["seeds"] for g in groups] == [2, 2, 2] and groups[0]["val_acc"] == pytest.approx((0.85, 0.05))
    figure = pareto_scatter(groups, "val_acc", "max", "invariance/max_logit_diff")
    dominated, front = figure.data
    assert front.name == "Pareto front" and len(front.x) + len(dominated.x) == 3
    assert figure.layout.xaxis.type == "log"
    assert pareto_scatter(groups, "val_acc", "max", "invariance/pred_agreement") is None


def test_result_columns_follow_the_metric():
    names = {
        "val_gap",
        "test_gap/original",
        "test_gap/rotated",
        "test_acc/z",
        "invariance/tour_agreement",
        "train_loss",
    }
    assert result_columns("val_gap", names) == ["test_gap/original", "test_gap/rotated", "invariance/tour_agreement"]
    assert result_columns("val_acc", names) == ["test_acc/z", "invariance/tour_agreement"]


def test_nightly_trends_show_one_metric_at_a_time_with_a_menu_for_the_others():
    series = {
        "val_acc": {"a": [("2026-01-01", 0.8), ("2026-01-02", 0.81)], "b": [("2026-01-02", 0.7)]},
        "samples_per_sec": {"a": [("2026-01-01", 900.0)]},
    }
    figure = nightly_trends(series, first="val_acc")
    assert [(t.name, t.visible) for t in figure.data] == [("a", False), ("a", True), ("b", True)]
    menu = figure.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["samples_per_sec", "val_acc"] and menu.active == 1
    assert menu.buttons[0].args[0]["visible"] == [True, False, False]
