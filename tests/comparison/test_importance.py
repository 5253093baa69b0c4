"""Parameter importance (Optuna's fANOVA) on sweeps built as data: the axis that matters ranks first, noise last."""

import json
import random
from pathlib import Path

from mlflow.tracking import MlflowClient

from geosweep.comparison.importance import MIN_RUNS, param_importance, record_importance
from geosweep.comparison.rows import Row
from report.sweep_store import fresh_store

EFFECT = {"raw": 0.30, "fa": 0.60, "tinv_mds": 0.85}  # val_acc by representation; the backbone adds nothing


def grid_rows(seeds: int = 3, noise: float = 0.03) -> list[Row]:
    """representation x backbone x seeds: the representation sets val_acc, the backbone and the seed are noise."""
    draw = random.Random(0)
    rows = []
    for representation, effect in EFFECT.items():
        for backbone in ("pointnet", "dgcnn", "deepsets"):
            for seed in range(seeds):
                rows.append(
                    Row(
                        axes={"representation.name": representation, "backbone.name": backbone, "seed": str(seed)},
                        status="finished",
                        metrics={"val_acc": effect + draw.gauss(0, noise)},
                    )
                )
    return rows


def test_the_axis_that_matters_ranks_first_and_the_noise_axis_gets_almost_nothing():
    importance = param_importance(grid_rows(), "val_acc", "max")
    assert list(importance.values) == ["representation.name", "backbone.name"]  # most important first
    assert importance.values["representation.name"] > 0.95 and importance.values["backbone.name"] < 0.05
    assert abs(sum(importance.values.values()) - 1) < 1e-9
    assert (importance.runs, importance.left_out, importance.note) == (27, 0, "")
    assert param_importance(grid_rows(), "val_acc", "max") == importance  # seeded: the same every time


def test_a_numeric_hyperparameter_that_matters_outranks_a_categorical_axis_that_does_not():
    draw = random.Random(1)
    rows = []
    for _ in range(30):
        lr = 10 ** draw.uniform(-4, -1)  # loguniform: a float axis
        representation = draw.choice(["raw", "fa", "tinv_mds"])
        val_acc = 0.9 - 0.5 * abs(lr - 0.01) / 0.1 + draw.gauss(0, 0.01)
        axes = {"optimizer.lr": str(lr), "representation.name": representation, "seed": "0"}
        rows.append(Row(axes=axes, status="finished", metrics={"val_acc": val_acc}))
    importance = param_importance(rows, "val_acc", "max")
    assert list(importance.values) == ["optimizer.lr", "representation.name"]
    assert importance.values["optimizer.lr"] > 0.8


def test_only_finished_runs_count_and_too_few_are_said_to_be_too_few():
    rows = grid_rows()
    axes = {"representation.name": "raw", "backbone.name": "dgcnn", "seed": "9"}
    failed = Row(axes=axes, status="failed", metrics={})
    # A stopped trial's metric is an earlier epoch's, not comparable: left out although it is the highest.
    stopped = Row(axes=axes, status="stopped early", metrics={"val_acc": 0.99})
    importance = param_importance([*rows, failed, stopped], "val_acc", "max")
    assert (importance.runs, importance.left_out) == (27, 2)
    assert importance.values == param_importance(rows, "val_acc", "max").values

    few = param_importance(rows[: MIN_RUNS - 1], "val_acc", "max")
    assert few.values == {} and few.note.startswith(f"{MIN_RUNS - 1} finished runs with val_acc: too few")
    one_axis = [Row(axes={**r.axes, "backbone.name": "dgcnn"}, status=r.status, metrics=r.metrics) for r in rows]
    assert param_importance(one_axis, "val_acc", "max").note.startswith("only representation.name varies")


def test_the_parent_run_gets_importance_metrics_and_a_json_artifact(tmp_path, tmp_path_factory):
    client = MlflowClient(fresh_store(tmp_path_factory, tmp_path))
    run_id = client.create_run(client.create_experiment("importance")).info.run_id
    record_importance(client, run_id, grid_rows(), "val_acc", "max")
    metrics = client.get_run(run_id).data.metrics
    assert set(metrics) == {"importance/representation.name", "importance/backbone.name"}
    assert metrics["importance/representation.name"] > 0.95
    saved = json.loads(Path(client.download_artifacts(run_id, "importance.json")).read_text())
    assert saved["metric"] == "val_acc" and saved["runs"] == 27 and saved["method"].startswith("fANOVA")
    assert saved["values"]["representation.name"] == metrics["importance/representation.name"]
