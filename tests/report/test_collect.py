"""What the report collects from MLflow beyond the rows: the nightly history, wherever the suite records it."""

from pathlib import Path

from mlflow.tracking import MlflowClient

from geosweep.nightly import store
from geosweep.nightly.suite import load_suite
from geosweep.report.collect import nightly_history
from report.sweep_store import fresh_store

SMOKE = Path(__file__).parents[2] / "configs/nightly/smoke.yaml"


def test_nightly_history_is_read_from_the_experiment_the_suite_names(tmp_path, tmp_path_factory):
    suite = load_suite(SMOKE, ["experiment=gpu-nights"])
    client = MlflowClient(fresh_store(tmp_path_factory, tmp_path))
    experiment = client.create_experiment(suite.experiment)
    for date, value in (("2026-02-01", 0.7), ("2026-02-02", 0.75)):
        night = store.start_night(client, experiment, suite.name, date, "tolerances: {val_acc: {}}\n")
        tags = store.child_tags(night, suite.name, date, "shapes-pointnet-raw-none")
        child = store.start_child(client, experiment, tags, params={})
        store.log_metrics(client, child, {"val_acc": value, "train_loss": 0.1})
        client.set_terminated(child)
        store.finish_night(client, night, "passed", {})

    nightly = nightly_history(client)

    assert nightly.series == {"val_acc": {"shapes-pointnet-raw-none": [("2026-02-01", 0.7), ("2026-02-02", 0.75)]}}
    assert nightly.note == ""
