"""Grouping over seeds, result columns and table cells, from hand-made rows."""

import pytest

from comparison.hand_rows import ROWS
from geosweep.comparison.groups import group_rows, result_columns, table_cells


def test_configurations_are_grouped_over_seeds_best_first_and_failed_runs_count_but_add_no_numbers():
    columns = result_columns("val_acc", {m for r in ROWS for m in r.metrics})
    groups = group_rows(ROWS, "val_acc", "max", columns)
    assert [g["configuration"] for g in groups] == [
        "epochs=3, optimizer.lr=0.01, representation={name: raw}",
        "epochs=3, optimizer.lr=0.0001, representation={name: tinv_mds}",  # its diverged seed left out, not NaN
        "epochs=3, optimizer.lr=0.001, representation={name: fa}",
    ]
    assert groups[0]["val_acc"] == pytest.approx((0.85, 0.05)) and groups[1]["val_acc"] == (0.7, 0.0)
    assert [(g["seeds"], g["failed"], g["stopped"]) for g in groups] == [(2, 0, 0), (2, 1, 0), (2, 1, 1)]
    header, cells = table_cells(groups, "val_acc", columns)
    assert header == ["configuration", "seeds", "val_acc", "invariance/max_logit_diff", "trial s", "status"]
    assert cells[0][2:] == ["0.85 +- 0.05", "2.5 +- 0.5", "10", "finished"]
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
