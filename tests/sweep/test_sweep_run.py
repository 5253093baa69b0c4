"""Real sweeps on the local Ray: ASHA stops trials early, failures are reported, MLflow holds the comparison."""

import json
import re
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from geosweep.sweep.config import SweepConfig
from geosweep.sweep.progress import config_label
from geosweep.sweep.run import run_sweep
from geosweep.tracking.logged_model import logged_model

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

    # Readable trial names: the one axis that varies.
    by_lr = {float(kid.data.params["optimizer.lr"]): kid for kid in kids}
    assert {lr: kid.info.run_name for lr, kid in by_lr.items()} == {
        0.01: "lr=0.01",
        0.003: "lr=0.003",
        3e-05: "lr=3e-05",
        1e-05: "lr=1e-05",
    }
    # A stopped trial is marked as it stops, not when the sweep ends: trials ran one at a time in the grid's
    # order, so the 3e-5 trial's run had ended before the 1e-5 trial's run began.
    for lr in (3e-05, 1e-05):
        stopped = by_lr[lr]
        assert stopped.info.status == "KILLED"
        assert stopped.data.tags["sweep.stopped_at_epoch"] == "1" and stopped.data.tags["sweep.stopped_by"] == "asha"
    assert by_lr[3e-05].info.end_time <= by_lr[1e-05].info.start_time
    assert by_lr[0.01].info.status == "FINISHED" and "sweep.stopped_at_epoch" not in by_lr[0.01].data.tags

    # The parent: the sweep's params, best metric and configuration, the board as description and table.
    params = parent.data.params
    assert params["scheduler.name"] == "asha" and params["space.optimizer.lr"].startswith("grid [0.01, 0.003")
    scored = [kid for kid in kids if "train_loss" in kid.data.metrics]
    best = min(scored, key=lambda kid: kid.data.metrics["train_loss"])  # one seed: a run is its configuration
    assert parent.data.metrics["best/train_loss"] == best.data.metrics["train_loss"]
    assert params["best.optimizer.lr"] == best.data.params["optimizer.lr"]
    assert parent.data.tags["mlflow.note.content"] == board
    assert "leaderboard_table.json" in artifacts
    assert parent.data.tags["axis.representation"] == "tinv_mds"  # the base's: the sweep does not vary it
    # Who ran it from which commit, on every run: the MLflow UI's User and Version columns.
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for run in [parent, *kids]:
        assert run.data.tags["mlflow.source.git.commit"] == head and run.data.tags["mlflow.user"]
    # The registry's `best`: the model of the best configuration that logged one (trials stopped early log none).
    modelled = [kid for kid in kids if logged_model(client, kid.info.experiment_id, kid.info.run_id)]
    assert modelled  # the trial of lr 1e-2 finished
    best = min(modelled, key=lambda kid: kid.data.metrics["train_loss"])
    assert client.get_model_version_by_alias("geosweep-t", "best").run_id == best.info.run_id


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


def test_an_optuna_sweep_keeps_its_study_in_a_journal_optuna_can_load(ray_local, mlflow_uri, tiny_config, tmp_path):
    tiny_config["epochs"] = 1
    space = {"optimizer.lr": {"loguniform": [1e-3, 1e-2]}}
    spec = sweep_of(tiny_config, tmp_path, space=space, searcher={"name": "optuna", "num_samples": 2})
    results, _ = run_sweep(spec)
    assert len(results) == 2 and not results.errors

    client, parent, kids = children(mlflow_uri, "tests")
    journal = tmp_path / "ray" / "t" / "optuna.journal"  # beside Tune's own state of the sweep
    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=f"t-{parent.info.run_id}", storage=storage)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    # The study's trials are the sweep's: the same learning rates and final val_acc as the trial runs in MLflow.
    in_mlflow = sorted((float(kid.data.params["optimizer.lr"]), kid.data.metrics["val_acc"]) for kid in kids)
    in_study = sorted((trial.params["optimizer.lr"], trial.value) for trial in study.trials)
    assert [value for pair in in_study for value in pair] == pytest.approx([v for pair in in_mlflow for v in pair])
    # Two trials are too few to rank parameters: the parent says so instead of logging noise.
    importance = json.loads(Path(client.download_artifacts(parent.info.run_id, "importance.json")).read_text())
    assert importance["values"] == {} and "too few for an importance estimate" in importance["note"]
    assert not any(name.startswith("importance/") for name in parent.data.metrics)
