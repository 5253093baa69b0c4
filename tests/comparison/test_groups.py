"""Grouping over seeds (sample SD, 95 % interval, Welch's test against the best), result columns, table cells."""

import math
import statistics

import pytest
from scipy import stats

from comparison.hand_rows import ROWS, row
from geosweep.comparison.groups import Spread, group_rows, result_columns, table_cells, welch_p


def test_configurations_are_grouped_over_seeds_best_first_and_failed_runs_count_but_add_no_numbers():
    columns = result_columns("val_acc", {m for r in ROWS for m in r.metrics})
    groups = group_rows(ROWS, "val_acc", "max", columns)
    assert [g["configuration"] for g in groups] == [
        "epochs=3, optimizer.lr=0.01, representation={name: raw}",
        "epochs=3, optimizer.lr=0.0001, representation={name: tinv_mds}",  # its diverged seed left out, not NaN
        "epochs=3, optimizer.lr=0.001, representation={name: fa}",
    ]
    assert groups[0]["val_acc"] == Spread((0.9, 0.8)) and groups[1]["val_acc"] == Spread((0.7,))
    assert [(g["seeds"], g["failed"], g["stopped"]) for g in groups] == [(2, 0, 0), (2, 1, 0), (2, 1, 1)]
    header, cells = table_cells(groups, "val_acc", columns)
    assert header == ["configuration", "seeds", "val_acc", "vs best", "invariance/max_logit_diff", "trial s", "status"]
    # Sample SD (ddof 1) and the 95 % t-interval: 0.85 +- 12.71 x 0.0707 / sqrt(2).
    assert cells[0][2:] == ["0.85 +- 0.0707 [0.215, 1.49]", "best", "2.5 +- 0.707 [-3.85, 8.85]", "10", "finished"]
    assert cells[1][2:4] == ["0.7 (n = 1)", "-"]  # one finished seed: no spread, nothing to test against the best
    assert cells[2][-1] == "1 failed; 1 stopped early: boom"


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


def test_spread_is_the_sample_sd_and_the_t_interval_of_the_mean():
    three = Spread((0.8, 0.9, 1.0))
    assert three.mean == pytest.approx(0.9)
    assert three.sd == pytest.approx(0.1) and three.sd > statistics.pstdev(three.values) * 1.2  # pstdev: 0.082
    assert three.half_width == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-4)  # t(0.975, 2) = 4.3027
    assert math.isnan(Spread((0.5,)).sd) and math.isnan(Spread((0.5,)).half_width)


def test_welch_p_is_the_two_sided_unequal_variance_t_test():
    best, other = Spread((0.90, 0.92, 0.91, 0.93)), Spread((0.80, 0.86, 0.83))
    se2 = best.sd**2 / 4 + other.sd**2 / 3
    t = (other.mean - best.mean) / math.sqrt(se2)
    df = se2**2 / ((best.sd**2 / 4) ** 2 / 3 + (other.sd**2 / 3) ** 2 / 2)  # Welch-Satterthwaite
    assert welch_p(best, other) == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert welch_p(best, Spread((0.9,))) is None
    assert welch_p(Spread((0.9, 0.9)), Spread((0.9, 0.9))) == 1.0 and welch_p(best, best) == pytest.approx(1.0)
    assert welch_p(Spread((1.0, 1.0)), Spread((0.5, 0.5))) == 0.0


def test_configurations_within_noise_of_the_best_are_marked():
    runs = [
        *(row("{name: fa}", 1e-3, seed, val_acc=v) for seed, v in enumerate((0.90, 0.92, 0.91))),
        *(row("{name: tinv_mds}", 1e-3, seed, val_acc=v) for seed, v in enumerate((0.89, 0.93, 0.90))),
        *(row("{name: raw}", 1e-3, seed, val_acc=v) for seed, v in enumerate((0.60, 0.61, 0.62))),
        row("{name: raw_aug}", 1e-3, 0, val_acc=0.95),  # one seed: ranked by its mean, never tested
    ]
    groups = group_rows(runs, "val_acc", "max", [])
    _, cells = table_cells(groups, "val_acc", [])
    marks = {c[0].split("representation=")[1]: c[3] for c in cells}
    assert marks["{name: raw_aug}"] == "best" and groups[0]["p_vs_best"] is None
    # Against a one-seed best nothing can be tested; against fa (3 seeds) tinv_mds is noise, raw is not.
    assert marks["{name: fa}"] == "-"
    runs = runs[:-1]
    groups = group_rows(runs, "val_acc", "max", [])
    _, cells = table_cells(groups, "val_acc", [])
    marks = {c[0].split("representation=")[1]: c[3] for c in cells}
    assert marks["{name: fa}"] == "best"
    assert marks["{name: tinv_mds}"].startswith("~ best (p=") and groups[1]["p_vs_best"] > 0.5
    assert marks["{name: raw}"].startswith("worse (p=") and groups[2]["p_vs_best"] < 1e-4


def test_the_per_class_companion_and_its_protocols_stand_beside_overall_accuracy():
    names = {"val_acc", "val_mean_class_acc", "test_acc/z", "test_mean_class_acc/z", "invariance/pred_agreement"}
    assert result_columns("val_acc", names) == [
        "val_mean_class_acc",
        "test_acc/z",
        "test_mean_class_acc/z",
        "invariance/pred_agreement",
    ]
    assert result_columns("val_mean_class_acc", names) == ["test_mean_class_acc/z", "invariance/pred_agreement"]
