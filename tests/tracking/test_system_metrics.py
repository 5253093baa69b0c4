"""MLflow's system-metrics monitor on a real SQLite run: started and stopped with the block, failed or not."""

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from geosweep.config import TrackingSpec
from geosweep.localhost import free_port
from geosweep.tracking.system_metrics import system_metrics

CPU = "system/cpu_utilization_percentage"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("system")  # one database: its creation takes seconds


@pytest.fixture
def run(store):
    uri, client, experiment_id = store
    return uri, client, client.create_run(experiment_id).info.run_id


def sampling() -> bool:
    return any(thread.name == "SystemMetricsMonitor" for thread in threading.enumerate())


def cpu_steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, CPU))


def test_the_monitor_samples_while_the_block_runs_and_stops_with_it(run):
    uri, client, run_id = run
    with system_metrics(TrackingSpec(system_metrics_interval_s=0.2), uri, run_id):
        time.sleep(1.5)
        assert sampling()
    assert not sampling()
    steps = cpu_steps(client, run_id)
    assert len(steps) >= 3 and steps == list(range(len(steps))), steps
    metrics = client.get_run(run_id).data.metrics
    assert {"system/system_memory_usage_megabytes", "system/disk_usage_percentage"} <= set(metrics)
    time.sleep(0.5)
    assert cpu_steps(client, run_id) == steps  # nothing after the block


def test_a_failing_block_stops_the_monitor_and_keeps_its_last_sample(run):
    uri, client, run_id = run
    with pytest.raises(RuntimeError, match="diverged"), system_metrics(TrackingSpec(), uri, run_id):
        raise RuntimeError("diverged")  # long before the first 10 s interval ends
    assert not sampling()
    assert cpu_steps(client, run_id) == [0]  # the partial interval's sample, logged on the way out


def test_a_restarted_attempt_continues_the_runs_steps(run):
    uri, client, run_id = run
    for _ in range(2):
        with system_metrics(TrackingSpec(), uri, run_id):
            pass
    assert cpu_steps(client, run_id) == [0, 1]


def test_switched_off_there_is_no_monitor(run):
    uri, client, run_id = run
    with system_metrics(TrackingSpec(system_metrics=False), uri, run_id) as monitor:
        time.sleep(0.3)
    assert monitor is None
    assert not [key for key in client.get_run(run_id).data.metrics if key.startswith("system/")]


def test_an_unreachable_store_never_reaches_the_training(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # as rank 0 sets it
    started = time.monotonic()
    with system_metrics(TrackingSpec(system_metrics_interval_s=0.1), f"http://127.0.0.1:{free_port()}", "0" * 32):
        time.sleep(0.5)  # the monitor's reads and writes fail meanwhile
    assert time.monotonic() - started < 10


def test_the_interval_is_validated():
    with pytest.raises(ValueError, match="system_metrics_interval_s"):
        TrackingSpec(system_metrics_interval_s=0)
