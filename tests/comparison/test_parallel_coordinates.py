"""Parallel coordinates from hand-made rows: failed, stopped and NaN trials never break them."""

import itertools
import math
import re

import pytest

from comparison.hand_rows import ROWS, row
from geosweep.comparison.figures import parallel_coordinates, standalone_html
from geosweep.comparison.groups import varying_axes


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
    assert [representation.ticktext[v] for v in representation.values] == [r.axes["representation"] for r in ROWS]
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


def test_axes_that_do_not_vary_are_left_out_the_status_too_when_every_trial_finished():
    finished = [row("{name: raw}", 1e-2, 0, val_acc=0.9), row("{name: fa}", 1e-2, 0, val_acc=0.8)]
    figure = parallel_coordinates(finished, varying_axes(finished), "val_acc", "max")
    assert [d.label for d in figure.data[0].dimensions] == ["representation", "val_acc"]  # no lr, epochs, status


@pytest.mark.parametrize("low", [0.0, 0.0015, 0.25, 0.5, 0.7, 0.98])
@pytest.mark.parametrize("span", [1e-3, 0.037, 0.1, 0.3333, 0.6])
def test_the_colour_scale_ends_at_exactly_one_whatever_the_metrics_range(low, span):
    # A sweep's leaderboard once failed here after every trial had finished: a last stop of 1.0000000000000002.
    rows = [row("{name: raw}", 1e-3, 0, val_acc=low), row("{name: fa}", 1e-3, 0, val_acc=low + span)]
    scale = parallel_coordinates(rows, ["representation"], "val_acc", "max").data[0].line.colorscale
    assert scale[0][0] == 0.0 and scale[-1][0] == 1.0
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(scale))
