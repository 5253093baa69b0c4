"""Kill a sweep's driver mid-way, resume it, and check finished trials were not run again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from geosweep import cli

pytestmark = pytest.mark.integration


def child_runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if "sweep.trial_id" in r.data.tags]


def trial_errors(uri: str) -> dict[str, str]:
    """Each failed trial run's recorded error, for an assertion's message."""
    failed = [run for run in child_runs(uri) if run.info.status == "FAILED"]
    return {run.info.run_id: run.data.tags.get("error", "(none recorded)") for run in failed}


def test_resume_finishes_the_sweep_without_rerunning_finished_trials(tiny_config, tmp_path):
    if ray.is_initialized():
        ray.shutdown()  # the sweep's driver starts its own Ray: never two on the machine
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A trial of 12 epochs lasts seconds even in a reused process (0.2 s an epoch here): the cut below is
    # watched for every 0.2 s, so the sweep cannot finish unseen between two looks.
    epochs = 12
    tiny_config.update(epochs=epochs, scaling={"num_workers": 1, "cpus_per_worker": 0.9})
    tiny_config["tracking"]["tracking_uri"] = uri
    sweep = {
        "name": "resumable",
        "base": tiny_config,
        "storage_path": str(tmp_path / "ray"),
        "space": {"optimizer.lr": {"grid": [1e-3, 2e-3, 3e-3, 4e-3]}},
        "resources": {"max_concurrent_trials": 1},  # one at a time: a clean "some finished, some not" cut
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    command = [sys.executable, "-m", "geosweep.cli", "sweep", str(path)]

    driver = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        # Killed once a trial has finished and the next one has its run: a resumed trial must find its run.
        while {"FINISHED", "RUNNING"} - {r.info.status for r in child_runs(uri)}:
            assert time.time() < deadline and driver.poll() is None, "no trial finished and the next started in time"
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started: our process group only
        driver.wait()
    # A finished trial run again would reopen its MLflow run and close it with a new end time.
    finished_before = {
        r.data.tags["sweep.trial_id"]: r.info.end_time for r in child_runs(uri) if r.info.status == "FINISHED"
    }
    names_before = {r.data.tags["sweep.trial_id"]: r.info.run_name for r in child_runs(uri)}
    assert 1 <= len(finished_before) < 4

    resumed = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, timeout=600, start_new_session=True
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    assert "4 trials, 0 failed" in resumed.stdout
    # The restored sweep keeps its progress view; its last line is the final state.
    view = [line for line in resumed.stdout.splitlines() if line.startswith("[sweep resumable ")]
    assert view and "4 trials: 0 pending, 0 running, 4 finished, 0 stopped early, 0 failed" in view[-1], view

    runs = child_runs(uri)
    assert len({r.data.tags["sweep.trial_id"] for r in runs}) == 4 == len(runs), "a trial got a second MLflow run"
    client = MlflowClient(uri)
    for run in runs:
        trial = run.data.tags["sweep.trial_id"]
        assert run.info.status == "FINISHED", trial
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(steps) == list(range(1, epochs + 1)), trial
        if trial in finished_before:
            assert run.info.end_time == finished_before[trial], f"finished trial {trial} was run again"
    # Readable names, each kept through the resume by the trial that had it, the unfinished one's included.
    names = {r.data.tags["sweep.trial_id"]: r.info.run_name for r in runs}
    assert sorted(names.values()) == ["lr=0.001", "lr=0.002", "lr=0.003", "lr=0.004"]
    assert len(names_before) > len(finished_before) and names_before.items() <= names.items()


def parents(uri: str) -> list:
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("tests").experiment_id], order_by=["attributes.start_time"]
    )
    return [run for run in runs if run.data.tags.get("sweep.parent") == "true"]


def leaderboard_of(uri: str, run_id: str) -> str:
    return Path(MlflowClient(uri).download_artifacts(run_id, "leaderboard.md")).read_text()


def test_resume_refuses_what_it_cannot_trust_retries_failed_trials_and_a_rerun_gets_its_own_parent(
    ray_local, mlflow_uri, tiny_config, tmp_path, capsys
):
    tiny_config.update(epochs=1, scaling={"num_workers": 1, "cpus_per_worker": 0.9})
    tiny_config["representation"] = {"name": "geodesic_mds", "kwargs": {"max_points": 16}}  # clouds have 64: fails
    sweep = {"name": "retry", "base": tiny_config, "storage_path": str(tmp_path / "ray"),
             "space": {"optimizer.lr": {"grid": [1e-3, 2e-3]}}}  # fmt: skip  # the sweep in two lines
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert cli.main(["sweep", str(path)]) == 1  # both trials failed
    (first,) = parents(mlflow_uri)
    runs_before = len(child_runs(mlflow_uri))

    # Nothing to resume under another name, and a changed file: refused before anything is recorded.
    assert cli.main(["sweep", str(path), "--resume", "--set", "name=retyr"]) == 2
    assert "no sweep 'retyr' to resume" in capsys.readouterr().err
    fixed = {**sweep, "base": {**tiny_config, "representation": {"name": "geodesic_mds", "kwargs": {"max_points": 64}}}}
    path.write_text(yaml.safe_dump(fixed))
    assert cli.main(["sweep", str(path), "--resume"]) == 2
    assert "base.representation.kwargs.max_points: 16 -> 64" in capsys.readouterr().err
    assert len(parents(mlflow_uri)) == 1 and len(child_runs(mlflow_uri)) == runs_before

    # Told to, it resumes the same parent with the new values and runs the failed trials again.
    retried = cli.main(["sweep", str(path), "--resume", "--allow-changes", "--retry-failed"])
    assert retried == 0, trial_errors(mlflow_uri)
    assert "2 trials, 0 failed" in capsys.readouterr().out
    (resumed,) = parents(mlflow_uri)
    assert resumed.info.run_id == first.info.run_id and resumed.info.status == "FINISHED"
    finished = [r for r in child_runs(mlflow_uri) if r.info.status == "FINISHED"]
    assert {r.data.tags["mlflow.parentRunId"] for r in finished} == {first.info.run_id} and len(finished) == 2
    assert "base.representation.kwargs.max_points" in resumed.data.tags["sweep.resumed_with_changes"]
    # The failed runs stay in MLflow, marked superseded, and leave the leaderboard.
    superseded = [r for r in child_runs(mlflow_uri) if r.data.tags.get("sweep.superseded") == "true"]
    assert len(superseded) == 2 and {r.info.status for r in superseded} == {"FAILED"}
    board = leaderboard_of(mlflow_uri, first.info.run_id)
    assert board.count("| finished |") == 2 and "failed" not in board

    # Run again without --resume: a new parent of its own; the first keeps its leaderboard.
    assert cli.main(["sweep", str(path)]) == 0, trial_errors(mlflow_uri)
    first_parent, second = parents(mlflow_uri)
    assert second.info.run_id != first.info.run_id == first_parent.info.run_id
    assert len([r for r in child_runs(mlflow_uri) if r.data.tags["mlflow.parentRunId"] == second.info.run_id]) == 2
    assert leaderboard_of(mlflow_uri, first.info.run_id) == board
