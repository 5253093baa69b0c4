"""Baseline and tolerance rules of the nightly comparison, on plain numbers."""

import math

import pytest

from geosweep.nightly.compare import baseline, compare_entry, compare_metric, night_status
from geosweep.nightly.suite import Tolerance

ACCURACY = Tolerance(better="higher", absolute=0.05)
GAP = Tolerance(better="lower", absolute=0.5)
THROUGHPUT = Tolerance(better="higher", relative=0.2)


def test_baseline_is_the_median_of_the_newest_k_finite_values():
    history = [0.5, 0.9, math.nan, 0.7, 0.1, 0.1]  # newest first
    assert baseline(history, window=3) == (0.7, 3)  # 0.5, 0.9, 0.7: the NaN night is skipped
    assert baseline(history, window=1) == (0.5, 1)
    assert baseline(history, window=10) == (0.5, 5)  # fewer nights than K: all of them
    assert baseline([], window=5) is None


@pytest.mark.parametrize(
    ("tolerance", "current", "status"),
    [
        (ACCURACY, 0.76, "ok"),  # baseline 0.8: a drop of 0.04 < 0.05
        (ACCURACY, 0.75, "ok"),  # exactly the tolerance (float noise must not flip it)
        (ACCURACY, 0.74, "regressed"),
        (ACCURACY, 0.99, "ok"),  # any improvement
        (Tolerance(better="lower", absolute=0.05), 0.84, "ok"),  # lower is better: a rise is the worse direction
        (Tolerance(better="lower", absolute=0.05), 0.86, "regressed"),
        (Tolerance(better="lower", absolute=0.05), 0.1, "ok"),
    ],
)
def test_tolerance_applies_in_the_metrics_worse_direction(tolerance, current, status):
    result = compare_metric("e", "m", current, [0.8], tolerance, window=5)
    assert result.status == status
    assert result.baseline == 0.8 and result.nights == 1 and result.allowed == pytest.approx(0.05)


def test_relative_tolerance_scales_with_the_baseline_and_adds_to_the_absolute():
    assert compare_metric("e", "samples_per_sec", 81.0, [100.0], THROUGHPUT, 5).status == "ok"
    assert compare_metric("e", "samples_per_sec", 79.0, [100.0], THROUGHPUT, 5).status == "regressed"
    both = Tolerance(better="lower", absolute=0.5, relative=0.1)  # baseline 10: allowed rise 0.5 + 1.0
    assert compare_metric("e", "val_gap", 11.4, [10.0], both, 5).status == "ok"
    assert compare_metric("e", "val_gap", 11.6, [10.0], both, 5).allowed == pytest.approx(1.5)
    assert compare_metric("e", "val_gap", 11.6, [10.0], both, 5).status == "regressed"


def test_the_baseline_is_robust_to_one_bad_night_in_the_window():
    history = [0.2, 0.8, 0.81]  # one bad night (accepted by hand) among good ones
    assert compare_metric("e", "val_acc", 0.79, history, ACCURACY, window=3).status == "ok"


def test_no_history_records_a_baseline_and_passes():
    results = compare_entry(
        "e", ("val_acc", "val_gap"), {"val_acc": 0.3, "val_gap": 4.0}, [], {"val_acc": ACCURACY, "val_gap": GAP}, 5
    )
    assert [r.status for r in results] == ["new", "new"]
    assert all(r.baseline is None and r.nights == 0 and r.change is None for r in results)
    assert night_status(results, {}) == "passed"


def test_a_missing_or_nan_metric_fails_the_night():
    history = [{"val_acc": 0.8, "val_gap": 3.0}]
    results = compare_entry(
        "e", ("val_acc", "val_gap"), {"val_gap": math.nan}, history, {"val_acc": ACCURACY, "val_gap": GAP}, 5
    )
    assert [(r.metric, r.status, r.current, r.baseline) for r in results] == [
        ("val_acc", "missing", None, 0.8),
        ("val_gap", "missing", None, 3.0),
    ]
    assert night_status(results, {}) == "regressed"
    assert compare_metric("e", "val_acc", None, [], ACCURACY, 5).status == "missing"  # tracked but never recorded


def test_a_night_without_the_metric_does_not_count_for_its_baseline():
    history = [{"other": 1.0}, {"val_acc": 0.9}, {"val_acc": 0.7}, {"val_acc": 0.1}]
    (result,) = compare_entry("e", ("val_acc",), {"val_acc": 0.8}, history, {"val_acc": ACCURACY}, window=2)
    assert (result.baseline, result.nights, result.status) == (pytest.approx(0.8), 2, "ok")


def test_a_failed_entry_fails_the_night_even_when_every_metric_passed():
    ok = compare_metric("e", "val_acc", 0.8, [0.8], ACCURACY, 5)
    assert night_status([ok], {}) == "passed"
    assert night_status([ok], {"other": "WorkerGroupError: boom"}) == "regressed"
