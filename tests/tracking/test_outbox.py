"""Rank 0's MLflow writes outlive an outage of a real `mlflow server`, and an endless one fails clearly."""

import time

import pytest
from mlflow.tracking import MlflowClient

from geosweep.localhost import free_port
from geosweep.tracking import EpochLogger, TrackingUnavailable
from geosweep.tracking.server import local_server

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fail_fast_per_request(monkeypatch):
    # As rank 0 sets it: the outbox retries, not each MLflow request for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_writes_made_while_the_server_is_down_arrive_once_and_in_order_when_it_returns(tmp_path):
    port, store = free_port(), f"sqlite:///{tmp_path / 'server.db'}"
    (tmp_path / "model.pt").write_bytes(b"weights")
    with local_server(tmp_path, store, port=port) as uri:
        run_id = MlflowClient(uri).create_run(MlflowClient(uri).create_experiment("outage")).info.run_id
        logger = EpochLogger(uri, run_id, memory_limit=2)  # a small memory bound: the outage spills to the spool
        for epoch in (1, 2, 3):
            logger.log_epoch_once(epoch, {"train_loss": float(epoch)})
        logger.settle(timeout_s=120)  # the store answers: settle waits until the writes are in it
        assert logger.undelivered == 0

    # The server is down: every call returns, and every write waits.
    for epoch in range(4, 10):
        logger.log_epoch_once(epoch, {"train_loss": float(epoch)})
    logger.log_epoch_once(3, {"train_loss": 99.0})  # a restarted attempt's replay of a logged epoch
    logger.log_step_once(9, {"test_acc": 0.5})
    logger.log_artifact_once(tmp_path / "model.pt")
    (tmp_path / "model.pt").unlink()  # the loop's temporary file is gone before the upload
    started = time.monotonic()
    logger.settle(timeout_s=120)  # the store is away: training does not wait for it
    assert time.monotonic() - started < 60
    assert logger.undelivered == 9

    with local_server(tmp_path, store, port=port) as uri:
        logger.close()
        client = MlflowClient(uri)
        losses = [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")]
        assert sorted(losses) == [(epoch, float(epoch)) for epoch in range(1, 10)]
        assert [m.step for m in client.get_metric_history(run_id, "test_acc")] == [9]
        assert [a.path for a in client.list_artifacts(run_id)] == ["model.pt"]


def test_a_server_down_past_the_limit_fails_the_writer_with_a_clear_error(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens
    logger = EpochLogger(uri, "0123456789abcdef", outage_limit_s=1.0)
    logger.log_epoch_once(1, {"train_loss": 1.0})
    with pytest.raises(TrackingUnavailable, match=r"unreachable for more than 1 s \(tracking.outage_limit_s\)"):
        logger.close()
    with pytest.raises(TrackingUnavailable):  # training's next write fails too, at once
        logger.log_epoch_once(2, {"train_loss": 1.0})


def test_a_write_the_store_refuses_fails_the_writer_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("refused")
    logger = EpochLogger(uri, "no-such-run", outage_limit_s=600)
    logger.set_tag("device", "cpu")
    with pytest.raises(TrackingUnavailable, match="refused a write"):
        logger.close()
