"""The sweep's leaderboard without Ray: the driver ends trial runs as Tune ended the trials, then logs the board."""

import json
import subprocess
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
    results, trial_runs = [], {}
    for trial_id, (lr, epochs, error, left) in trials.items():
        tags = {"mlflow.parentRunId": parent_run_id, "sweep.trial_id": trial_id}
        run_id = trial_runs[trial_id] = client.create_run(experiment, run_name=trial_id, tags=tags).info.run_id
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

    # The parent run as the MLflow UI shows it: best metric and configuration, the board as its description and
    # as a sortable table, the sweep's definition as params, its origin as the User and Version columns.
    parent = client.get_run(parent_run_id)
    assert parent.data.metrics["best/val_acc"] == 0.5 and parent.data.params["best.optimizer.lr"] == "0.1"
    assert parent.data.tags["mlflow.note.content"] == board
    table = json.loads(Path(client.download_artifacts(parent_run_id, "leaderboard_table.json")).read_text())
    column = {name: [row[i] for row in table["data"]] for i, name in enumerate(table["columns"])}
    assert column["optimizer/lr"] == [0.1, 0.01, 0.001] and column["val_acc"] == [0.5, 0.05, None]
    assert {"path": "leaderboard_table.json", "type": "table"} in json.loads(parent.data.tags["mlflow.loggedArtifacts"])
    assert parent.data.params["space.optimizer.lr"] == "grid [0.1, 0.01, 0.001]"
    assert parent.data.params["scheduler.name"] == "fifo" and parent.data.params["metric"] == "val_acc"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert parent.data.tags["mlflow.source.git.commit"] == head and parent.data.tags["mlflow.user"]

    # Recorded again (a resumed sweep) with another best: the table is replaced, not appended to; the best's
    # params cannot change, and a tag says so.
    client.log_metric(trial_runs["t1"], "val_acc", 0.9, step=2)
    record_leaderboard(sweep, results, client, parent_run_id)
    table = json.loads(Path(client.download_artifacts(parent_run_id, "leaderboard_table.json")).read_text())
    assert len(table["data"]) == 3 and table["data"][0][table["columns"].index("optimizer/lr")] == 0.01
    parent = client.get_run(parent_run_id)
    assert parent.data.metrics["best/val_acc"] == 0.9 and "best.optimizer.lr" in parent.data.tags["sweep.best_changed"]


def test_the_parent_carries_only_the_tags_every_trial_shares(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path)
    base = load_run_config(BASE, ["tracking.experiment=board", f"tracking.tracking_uri={uri}"])
    space = {"representation": {"grid": [{"name": "raw"}, {"name": "fa"}]}, "hypernet": {"grid": [{"name": "mip"}]}}
    sweep = SweepConfig.model_validate(
        {"name": "tags", "base": base.model_dump(mode="json"), "space": space, "seeds": 2}
    )
    tags = MlflowClient(uri).get_run(start_parent_run(sweep)).data.tags
    assert "axis.representation" not in tags and "seed" not in tags  # they vary
    assert tags["axis.hypernet"] == "mip" != base.hypernet.name  # one value: every trial's, not the base's
    assert tags["axis.backbone"] == base.backbone.name and tags["sweep.parent"] == "true"
