"""A mip hypernetwork amortising label smoothing: one trial covers a slice of the sweep."""

import pytest
from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.train.launch import run_training

pytestmark = pytest.mark.integration


def test_amortised_trial_logs_every_grid_value_and_diagnostics(ray_local, mlflow_uri, tiny_config, tmp_path):
    tiny_config["hypernet"] = {
        "name": "mip",
        "kwargs": {
            "hidden": [8],
            "condition": "hyperparam",
            "amortised": {"name": "label_smoothing", "low": 0.0, "high": 0.2, "grid": [0.0, 0.1, 0.2]},
        },
    }
    run_training(parse_run_config(tiny_config), storage_path=tmp_path / "ray")

    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    metrics = run.data.metrics
    for value in ("0", "0.1", "0.2"):
        for split in ("val", "test"):
            assert 0.0 <= metrics[f"amortised/label_smoothing:{value}/{split}_acc"] <= 1.0
    per_epoch = [k for k in metrics if k.startswith("hypernet/") and k.endswith("/delta_over_theta0")]
    assert per_epoch, "no per-tensor |delta theta| / |theta_0| diagnostics"
    for key in [*per_epoch, "hypernet/output_norm_over_input_norm"]:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
    assert run.data.tags["axis.hypernet"] == "mip"
