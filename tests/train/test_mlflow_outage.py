"""A training run outlives an outage of its real `mlflow server`: it finishes, and MLflow holds every epoch once.

The server is stopped as soon as the driver has created the run and written its config
(its last write; before any worker writes) and started again, on the same port and store, only once Ray Train holds a
checkpoint of a later epoch: every write of those epochs waited in rank 0's outbox.
"""

import contextlib
import json
import threading
import time

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.localhost import free_port
from geosweep.tracking.logged_model import logged_model
from geosweep.tracking.server import local_server
from geosweep.train.launch import close_failed_run, run_training

pytestmark = pytest.mark.integration
EPOCHS = 6


def wait_for(condition, timeout_s=300):
    deadline = time.monotonic() + timeout_s  # a hang guard, not a verdict
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def checkpointed_epoch(snapshot) -> int:
    """The latest epoch Ray Train has checkpointed (from its own snapshot file), 0 before the first."""
    try:
        latest = json.loads(snapshot.read_text())["latest_checkpoint_result"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return int(latest["metrics"]["epoch"]) if latest else 0


def test_a_run_outlives_an_mlflow_outage_and_holds_every_epoch_once(ray_local, tiny_config, tmp_path):
    port, store = free_port(), f"sqlite:///{tmp_path / 'server.db'}"
    behind_the_server = MlflowClient(store)  # reads the server's store directly, up or down
    raw = {
        **tiny_config,
        "epochs": EPOCHS,
        "tracking": {"experiment": "outage", "tracking_uri": f"http://127.0.0.1:{port}"},
    }
    snapshot = tmp_path / "ray" / "outage" / "checkpoint_manager_snapshot.json"
    server = contextlib.ExitStack()
    server.enter_context(local_server(tmp_path, store, port=port))
    seen_at_restart = {}

    def the_run():
        experiment = behind_the_server.get_experiment_by_name("outage")
        runs = behind_the_server.search_runs([experiment.experiment_id]) if experiment else []
        return runs[0] if runs else None

    def outage():
        # The driver has created the run and written config.yaml, its last write; no worker has started.
        wait_for(lambda: any(tmp_path.glob("artifacts/*/*/artifacts/config.yaml")))
        server.close()
        wait_for(lambda: checkpointed_epoch(snapshot) >= 3)
        seen_at_restart["checkpointed"] = checkpointed_epoch(snapshot)
        seen_at_restart["in_mlflow"] = len(behind_the_server.get_metric_history(the_run().info.run_id, "train_loss"))
        server.enter_context(local_server(tmp_path, store, port=port))

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        result = run_training(parse_run_config(raw), storage_path=tmp_path / "ray", run_name="outage")
        thread.join(timeout=300)
        assert result.metrics["epoch"] == EPOCHS
        # The outage did overlap training: epochs were checkpointed that MLflow did not yet hold.
        assert seen_at_restart["in_mlflow"] < seen_at_restart["checkpointed"], seen_at_restart
        run = the_run()
        run_id = run.info.run_id
        assert run.info.status == "FINISHED"
        steps = sorted(m.step for m in behind_the_server.get_metric_history(run_id, "train_loss"))
        assert steps == list(range(1, EPOCHS + 1))
        assert [m.step for m in behind_the_server.get_metric_history(run_id, "val_acc")] == list(range(1, EPOCHS + 1))
        assert len(behind_the_server.get_metric_history(run_id, "repr/seconds")) == 1  # step 0, once
        assert run.data.tags["device"] == "cpu"
        assert len(run.inputs.dataset_inputs) == 6  # its datasets waited in the outbox too, and landed once
        model = logged_model(MlflowClient(f"http://127.0.0.1:{port}"), run.info.experiment_id, run_id)
        assert model.status == LoggedModelStatus.READY  # the final model, delivered once the server was back
    finally:
        server.close()


def test_a_failed_run_keeps_its_own_error_when_mlflow_cannot_mark_it():
    error = RuntimeError("worker died")
    close_failed_run(f"http://127.0.0.1:{free_port()}", "0" * 32, error)  # nothing listens there
    assert str(error) == "worker died"
    assert "could not be marked FAILED" in error.__notes__[0]
