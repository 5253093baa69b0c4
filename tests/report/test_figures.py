"""The report's own figures from hand-made rows and series: the Pareto front over groups, nightly trends."""

import pytest

from comparison.hand_rows import ROWS
from geosweep.comparison.groups import group_rows, result_columns
from geosweep.report.figures import nightly_trends, pareto_front, pareto_scatter


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
    columns = result_columns("val_acc", {m for r in ROWS for m in r.metrics})
    assert columns == ["invariance/max_logit_diff"]
    groups = group_rows(ROWS, "val_acc", "max", columns)
    assert [g["seeds"] for g in groups] == [2, 2, 2] and groups[0]["val_acc"].mean == pytest.approx(0.85)
    figure = pareto_scatter(groups, "val_acc", "max", "invariance/max_logit_diff")
    dominated, front = figure.data
    assert front.name == "Pareto front" and len(front.x) + len(dominated.x) == 3
    assert figure.layout.xaxis.type == "log"
    assert pareto_scatter(groups, "val_acc", "max", "invariance/pred_agreement") is None


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
