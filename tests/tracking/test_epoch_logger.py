"""Rank 0's MLflow writes are each made once per run, whatever attempt of the run makes them."""

from mlflow.tracking import MlflowClient

from geosweep.tracking import EpochLogger


def test_step_zero_and_final_batches_are_logged_once_across_attempts(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("once")).info.run_id
    first_attempt = EpochLogger(uri, run_id)
    first_attempt.log_step_once(0, {"repr/seconds": 0.5, "cache/hits": 0.0})
    first_attempt.log_epoch_once(1, {"train_loss": 2.0})
    first_attempt.log_step_once(1, {"test_acc/so3": 0.8})
    first_attempt.close()

    restarted = EpochLogger(uri, run_id)  # a worker group restarted after a failure: a fresh logger
    restarted.log_step_once(0, {"repr/seconds": 0.7, "cache/hits": 3.0})
    restarted.log_epoch_once(1, {"train_loss": 2.5})
    restarted.log_step_once(1, {"test_acc/so3": 0.9})
    restarted.log_step_once(2, {"test_acc/so3": 0.9})  # a step not logged before is
    restarted.close()

    history = {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in ("repr/seconds", "cache/hits", "train_loss", "test_acc/so3")
    }
    assert history == {
        "repr/seconds": [(0, 0.5)],
        "cache/hits": [(0, 0.0)],
        "train_loss": [(1, 2.0)],
        "test_acc/so3": [(1, 0.8), (2, 0.9)],
    }
