"""The sweep's leaderboard without Ray: the driver ends trial runs as Tune ended the trials, then logs the board."""

from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient
from ray.tune import Result

from geosweep.config import load_run_config
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.run import record_leaderboard, start_parent_run
from report.sweep_store import fresh_store

BASE = Path(__file__).parents[2] / "configs/train/shapes_pointnet_tinv.yaml"  # never trained here: only recorded


def test_the_driver_ends_stopped_and_failed_trial_runs_and_logs_the_leaderboard(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path)
    base = load_run_config(BASE, ["epochs=4", "tracking.experiment=board", f"tracking.tracking_uri={uri}"])
    sweep = SweepConfig.model_validate(
        {"name": "board", "base": base.model_dump(mode="json"), "space": {"optimizer.lr": {"grid": [0.1, 0.01, 0.001]}}}
    )
    parent_run_id = start_parent_run(sweep)
    client = MlflowClient(uri)
    experiment = client.get_run(parent_run_id).info.experiment_id
    # As Tune left them: a finished trial, one the scheduler stopped (its driver ended mid-run, its run still
    # RUNNING), and one that raised at epoch 2 (run_training already marked it FAILED).
    trials = {"t0": (0.1, 4, None, None), "t1": (0.01, 1, None, "RUNNING"), "t2": (0.001, 2, RuntimeError("x"), None)}
    results = []
    for trial_id, (lr, epochs, error, left) in trials.items():
        tags = {"mlflow.parentRunId": parent_run_id, "sweep.trial_id": trial_id}
        run_id = client.create_run(experiment, run_name=trial_id, tags=tags).info.run_id
        client.log_param(run_id, "optimizer.lr", str(lr))
        client.log_metric(run_id, "val_acc", lr * 5, step=epochs)
        if left is None:
            client.set_terminated(run_id, "FAILED" if error else "FINISHED")
        metrics = {"trial_id": trial_id, "epoch": epochs, "val_acc": lr * 5, "config": {"optimizer.lr": lr}}
        results.append(Result(metrics=metrics, checkpoint=None, error=error, path="", _storage_filesystem=None))

    board = record_leaderboard(sweep, results, client, parent_run_id)

    runs = {r.info.run_name: r.info.status for r in client.search_runs([experiment]) if r.info.run_id != parent_run_id}
    assert runs == {"t0": "FINISHED", "t1": "KILLED", "t2": "FAILED"}
    assert client.get_run(parent_run_id).info.status == "FAILED"  # a trial failed
    lines = [line for line in board.splitlines() if line.startswith("| `")]
    assert [line.split(" | ")[0] for line in lines] == [
        "| `optimizer.lr=0.1`",
        "| `optimizer.lr=0.01`",
        "| `optimizer.lr=0.001`",
    ]
    assert lines[1].endswith("| 1 stopped early |") and lines[2].endswith("| 1 failed |")
    artifacts = {a.path for a in client.list_artifacts(parent_run_id)}
    assert {"leaderboard.md", "parallel_coordinates.html", "best_config.yaml"} <= artifacts
    best = yaml.safe_load(Path(client.download_artifacts(parent_run_id, "best_config.yaml")).read_text())
    assert best["optimizer"]["lr"] == 0.1 and best["epochs"] == 4
