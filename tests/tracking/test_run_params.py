"""A run's MLflow params hold its training recipe: the augmentation, the momentum and the learning-rate schedule."""

from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.tracking import start_run


def test_the_training_recipe_is_in_the_runs_params(tiny_config, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tiny_config["tracking"] = {"experiment": "recipe", "tracking_uri": uri}
    tiny_config["dataset"]["augmentation"] = {
        "scale": {"low": 0.6667, "high": 1.5, "per_axis": True},
        "jitter": {"sigma": 0.01, "clip": 0.05},
    }
    tiny_config["optimizer"] = {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "schedule": {"name": "step", "step_size": 20, "gamma": 0.7},
    }
    _, run_id = start_run(parse_run_config(tiny_config), "recipe")
    params = MlflowClient(uri).get_run(run_id).data.params
    assert {
        "dataset.rotation.train": "z",
        "dataset.augmentation.scale.low": "0.6667",
        "dataset.augmentation.scale.per_axis": "True",
        "dataset.augmentation.translate": "None",
        "dataset.augmentation.jitter.sigma": "0.01",
        "dataset.augmentation.jitter.clip": "0.05",
        "optimizer.momentum": "0.9",
        "optimizer.schedule.name": "step",
        "optimizer.schedule.step_size": "20",
        "optimizer.schedule.gamma": "0.7",
    }.items() <= params.items()
