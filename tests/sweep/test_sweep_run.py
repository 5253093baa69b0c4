"""Real sweeps on the local Ray: ASHA stops trials early, failures are reported, MLflow holds the comparison."""

import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from geosweep.sweep.config import SweepConfig
from geosweep.sweep.progress import config_label
from geosweep.sweep.run import run_sweep

pytestmark = pytest.mark.integration


def sweep_of(tiny_config: dict, tmp_path: Path, **fields) -> SweepConfig:
    tiny_config["scaling"] = {"num_workers": 1, "cpus_per_worker": 0.9}  # two trials at a time on 2 CPUs
    return SweepConfig.model_validate(
        {"name": "t", "base": tiny_config, "storage_path": str(tmp_path / "ray"), **fields}
    )


def children(uri: str, experiment: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep.parent") == "true"]
    assert len(parents) == 1
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return client, parents[0], kids


def test_asha_sweep_stops_trials_early_and_lands_in_mlflow(ray_local, mlflow_uri, tiny_config, tmp_path, capsys):
    # ASHA's verdict is forced, not raced: one trial at a time, so results reach the scheduler in the
    # grid's order, and a continuous metric, so no two trials tie at a rung (accuracy on a tiny
    # validation split sits at chance for every learning rate after one epoch). The same seed gives
    # every trial the same initial weights and batches: at epoch 1 a smaller learning rate has moved
    # less, so its training loss is higher.
    tiny_config["epochs"] = 4
    spec = sweep_of(
        tiny_config,
        tmp_path,
        # Good first: the later, slower ones fall below the bar.
        space={"optimizer.lr": {"grid": [1e-2, 3e-3, 3e-5, 1e-5]}},
        metric="train_loss",
        mode="min",
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        resources={"max_concurrent_trials": 1},
        progress_interval_s=2,
    )
    results, table = run_sweep(spec)
    assert len(results) == 4 and not results.errors
    epochs_of = {result.config["optimizer.lr"]: result.metrics["epoch"] for result in results}
    # The first trial has nothing to be compared with; the two slowest are below the rung-1 median of those before.
    assert epochs_of[1e-2] == 4 and epochs_of[3e-5] == epochs_of[1e-5] == 1, f"ASHA's rungs: {epochs_of}"
    epochs = sorted(epochs_of.values())

    # The console view: plain lines in place of Tune's table, the last one the final state and best trial.
    output = capsys.readouterr().out
    view = [line for line in output.splitlines() if line.startswith("[sweep t ")]
    assert len(view) >= 3 and "\x1b" not in "".join(view)
    assert "Trial status" not in output and "Configuration for experiment" not in output  # Tune's own tables
    counts = [
        [int(n) for n in re.findall(r"(\d+) (?:pending|running|finished|stopped early|failed)", line)] for line in view
    ]
    assert all(sum(c) == 4 for c in counts) and any(pending and running for pending, running, *_ in counts)
    state, _, best_part = view[-1].partition("] ")[2].partition(" | ")
    assert (
        state
        == f"4 trials: 0 pending, 0 running, {epochs.count(4)} finished, {4 - epochs.count(4)} stopped early, 0 failed"
    )
    best_of = {config_label(r.config): r.metrics_dataframe["train_loss"].min() for r in results}  # any epoch's
    best = min(best_of.values())
    best_labels = {f"best train_loss {best:.4g} ({label})" for label, value in best_of.items() if value == best}
    assert best_part in best_labels, view[-1]

    client, parent, kids = children(mlflow_uri, "tests")
    assert len(kids) == 4
    for kid in kids:
        steps = [m.step for m in client.get_metric_history(kid.info.run_id, "val_acc")]
        assert steps == list(range(1, len(steps) + 1)) and steps  # each epoch once
        assert kid.data.tags["sweep.name"] == "t" and kid.data.tags["sweep.trial_id"]
        # Every epoch Tune judged is in MLflow; a stopped trial's worker may have finished one more
        # before the stop reached it (Train hands reports over asynchronously), and MLflow keeps that too.
        assert len(steps) >= epochs_of[float(kid.data.params["optimizer.lr"])]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.md", "best_config.yaml", "sweep.json", "parallel_coordinates.html"} <= artifacts
    board = Path(client.download_artifacts(parent.info.run_id, "leaderboard.md")).read_text()
    assert "stopped early" in board and board.count("| `") == 4


def test_failed_trials_are_reported_and_the_rest_finish(ray_local, mlflow_uri, tiny_config, tmp_path):
    too_few_points = {"name": "geodesic_mds", "kwargs": {"max_points": 16}}  # raises: clouds have 64 points
    diverging = {"name": "sgd", "lr": 1.0e30}
    space = {
        "representation": {"grid": [{"name": "tinv_mds"}, too_few_points]},
        "optimizer": {"grid": [{"name": "adam", "lr": 0.001}, diverging]},
    }
    spec = sweep_of(tiny_config, tmp_path, space=space)
    results, table = run_sweep(spec)
    assert len(results) == 4 and "| finished |" in table
    messages = [str(error) for error in results.errors]
    assert len(messages) == 3, messages
    assert any("max_points" in m for m in messages)
    assert any("non-finite mean loss" in m for m in messages)

    client, parent, kids = children(mlflow_uri, "tests")
    board = Path(client.download_artifacts(parent.info.run_id, "leaderboard.md")).read_text()
    assert board.count("1 failed") == 3 and "| finished |" in board
    plot = Path(client.download_artifacts(parent.info.run_id, "parallel_coordinates.html")).read_text()
    assert '"ticktext":["finished","failed"]' in plot and '"label":"representation.name"' in plot  # failed trials drawn
    assert parent.info.status == "FAILED"  # a sweep with failed trials is not a finished one
    statuses = {
        (kid.data.params["representation.name"], kid.data.params["optimizer.name"]): kid.info.status for kid in kids
    }
    assert statuses == {
        ("tinv_mds", "adam"): "FINISHED",
        ("tinv_mds", "sgd"): "FAILED",
        ("geodesic_mds", "adam"): "FAILED",
        ("geodesic_mds", "sgd"): "FAILED",
    }
