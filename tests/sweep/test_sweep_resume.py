"""Kill a sweep's driver mid-way, resume it, and check finished trials were not run again."""

import os
import signal
import subprocess
import sys
import time

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def child_runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if "sweep.trial_id" in r.data.tags]


def test_resume_finishes_the_sweep_without_rerunning_finished_trials(tiny_config, tmp_path):
    if ray.is_initialized():
        ray.shutdown()  # the sweep's driver starts its own Ray: never two on the machine
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tiny_config.update(epochs=3, scaling={"num_workers": 1, "cpus_per_worker": 0.9})
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
        while sum(r.info.status == "FINISHED" for r in child_runs(uri)) < 1:
            assert time.time() < deadline and driver.poll() is None, "no trial finished before the deadline"
            time.sleep(2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started: our process group only
        driver.wait()
    # A finished trial run again would reopen its MLflow run and close it with a new end time.
    finished_before = {
        r.data.tags["sweep.trial_id"]: r.info.end_time for r in child_runs(uri) if r.info.status == "FINISHED"
    }
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
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3], trial
        if trial in finished_before:
            assert run.info.end_time == finished_before[trial], f"finished trial {trial} was run again"
