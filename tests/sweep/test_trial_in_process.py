"""A one-worker CPU trial trains in its Tune trial's own process: Tune keeps its checkpoints and restarts it."""

import os
import threading
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from ray import tune

from geosweep.config import RunConfig
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.run import run_sweep
from geosweep.train.launch import train_in_this_trial

pytestmark = pytest.mark.integration


def one_worker_sweep(tiny_config: dict, tmp_path: Path, **fields) -> SweepConfig:
    tiny_config["scaling"] = {"num_workers": 1, "cpus_per_worker": 0.9}
    return SweepConfig.model_validate(
        {"name": "inproc", "base": tiny_config, "storage_path": str(tmp_path / "ray"), **fields}
    )


def runs_in(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def trial_runs(uri: str) -> list:
    return [run for run in runs_in(uri) if "sweep.trial_id" in run.data.tags]


def trial_processes() -> list[psutil.Process]:
    """This machine's Tune trial processes running a trial now: Ray titles a process with the task it runs."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if (p.info["cmdline"] or [""])[0].startswith("ray::ImplicitFunc.train")
    ]


def epochs_logged(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "val_acc"))


def test_trials_train_in_their_own_process_and_keep_only_the_checkpoints_to_resume(
    ray_local, mlflow_uri, tiny_config, tmp_path, capfd
):
    tiny_config.update(epochs=4, failure={"checkpoints_to_keep": 2})
    results, _ = run_sweep(one_worker_sweep(tiny_config, tmp_path, space={"optimizer.lr": {"grid": [1e-3, 3e-3]}}))
    assert len(results) == 2 and not results.errors

    client = MlflowClient(mlflow_uri)
    runs = trial_runs(mlflow_uri)
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["train.session"] == "tune_trial" and run.data.tags["ddp.backend"] == "none"
        assert epochs_logged(client, run.info.run_id) == [1, 2, 3, 4]  # each epoch once
    # Tune's trial directories hold the checkpoints, the last two of each; no Ray Train run directory exists.
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["inproc"]
    trial_dirs = [p for p in (tmp_path / "ray" / "inproc").iterdir() if p.is_dir()]
    assert len(trial_dirs) == 2
    for trial_dir in trial_dirs:
        assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000002", "checkpoint_000003"]
    # Neither Ray's line per checkpoint nor Tune's warning about the snapshots num_to_keep forces.
    output = "".join(capfd.readouterr())
    assert "Checkpoint successfully created" not in output and "snapshotting" not in output


def test_a_killed_trial_process_resumes_from_its_last_checkpoint(ray_local, mlflow_uri, tiny_config, tmp_path):
    tiny_config.update(epochs=10, failure={"max_failures": 1})
    client = MlflowClient(mlflow_uri)
    killed: list[int] = []
    done = threading.Event()

    def kill_the_trial_after_its_second_epoch() -> None:
        deadline = time.time() + 240
        while time.time() < deadline and not killed and not done.is_set():
            runs = trial_runs(mlflow_uri)
            if runs and len(epochs_logged(client, runs[0].info.run_id)) >= 2:
                training = trial_processes()
                if len(training) == 1:  # none while Tune starts it, and this sweep runs one
                    training[0].kill()
                    killed.append(training[0].pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_trial_after_its_second_epoch)
    killer.start()
    try:
        results, _ = run_sweep(one_worker_sweep(tiny_config, tmp_path))
    finally:
        done.set()
        killer.join()
    assert killed, "the trial's process was never found and killed"
    assert len(results) == 1 and not results.errors  # Tune ran it again, within failure.max_failures

    [run] = trial_runs(mlflow_uri)
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_from_epoch"]) >= 1  # from Tune's checkpoint, not from scratch
    assert epochs_logged(client, run.info.run_id) == list(range(1, 11))  # each epoch once, none lost


def test_trials_one_after_another_share_one_process(ray_local, mlflow_uri, tiny_config, tmp_path):
    # Tune hands a finished trial's process on to the next (reuse_actors): start-up and imports are paid once.
    sweep = one_worker_sweep(
        tiny_config,
        tmp_path,
        space={"optimizer.lr": {"grid": [1e-3, 2e-3, 3e-3]}},
        resources={"max_concurrent_trials": 1},
    )
    results, _ = run_sweep(sweep)
    assert len(results) == 3 and not results.errors

    client = MlflowClient(mlflow_uri)
    runs = trial_runs(mlflow_uri)
    assert len({run.data.tags["process"] for run in runs}) == 1, [run.data.tags["process"] for run in runs]
    # Each trial still trained its own configuration from its own start, once per epoch.
    assert sorted(float(run.data.params["optimizer.lr"]) for run in runs) == [1e-3, 2e-3, 3e-3]
    for run in runs:
        assert run.info.status == "FINISHED" and "resumed_from_epoch" not in run.data.tags
        assert epochs_logged(client, run.info.run_id) == [1, 2]


def test_training_fails_mlflow_requests_fast_only_while_it_trains(ray_local, mlflow_uri, tiny_config, tmp_path):
    # Rank 0 tries each MLflow request once (its outbox retries); the trial's own code around the training,
    # which ends the run and starts the next trial in a reused process, keeps MLflow's retries.
    tiny_config.update(epochs=1, scaling={"num_workers": 1, "cpus_per_worker": 0.9})
    tiny_config["tracking"]["tracking_uri"] = mlflow_uri  # the trial's process is older than this test's env
    config = RunConfig.model_validate(tiny_config)

    def trial(_: dict) -> None:
        train_in_this_trial(config, run_name="fail-fast")
        tune.report({"retries": os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLflow's default")})

    tuner = tune.Tuner(
        tune.with_resources(trial, {"CPU": 0.9}),
        run_config=tune.RunConfig(name="fail-fast", storage_path=str(tmp_path / "ray"), verbose=0),
    )
    [result] = tuner.fit()
    assert result.error is None and result.metrics["retries"] == "MLflow's default"
    [run] = runs_in(mlflow_uri)
    assert run.info.status == "FINISHED" and run.data.tags["train.session"] == "tune_trial"
