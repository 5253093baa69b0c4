"""Tiny models trained for real and logged into real MLflow runs as a run's rank 0 logs them, without Ray."""

from __future__ import annotations

from pathlib import Path

import torch

from geosweep.config import RunConfig, parse_run_config
from geosweep.tracking import EpochLogger, start_run
from geosweep.train.training import Training


def tiny_config(tmp_path: Path, uri: str, task: str = "classification", **fields) -> RunConfig:
    """A one-worker config of `task` that trains an epoch in about a second; `fields` replace top-level ones."""
    common = {
        "epochs": 1,
        "seed": 0,
        "scaling": {"num_workers": 1},
        "tracking": {"experiment": "models", "tracking_uri": uri},
    }
    if task == "tsp":
        raw = {
            "task": {"name": "tsp", "kwargs": {"epoch_size": 64, "baseline_eval_size": 16}},
            "dataset": {"name": "tsp", "kwargs": {"num_nodes": 8, "val_size": 16, "test_size": 8, "reference": "none",
                                                   "data_dir": str(tmp_path / "tsp")}},
            "representation": {"name": "tinv_mds", "kwargs": {"scale": "rms"}},
            "backbone": {"name": "attention_model",
                         "kwargs": {"embed_dim": 8, "num_layers": 1, "num_heads": 2, "ff_hidden": 16}},
            "batch_size": 32,
        }  # fmt: skip  # one line per config section
    else:
        raw = {
            "dataset": {"name": "shapes", "kwargs": {"num_points": 64, "train_per_class": 8, "val_per_class": 4,
                                                      "test_per_class": 4}, "rotation": {"train": "z", "test": "so3"}},
            "representation": {"name": "tinv_mds"},
            "backbone": {"name": "pointnet", "kwargs": {"point_widths": [16, 32], "head_widths": [16], "dropout": 0.0}},
            "batch_size": 8,
            "cache": {"dir": str(tmp_path / "repr-cache")},
        }  # fmt: skip  # one line per config section
    return parse_run_config({**common, **raw, **fields})


def trained(config: RunConfig) -> Training:
    """`config` trained for its epochs on rank 0 of 1, on the CPU: the path a run's workers take."""
    torch.set_num_threads(1)
    training = Training(config, rank=0, world_size=1, device=torch.device("cpu"))
    for epoch in range(1, config.epochs + 1):
        training.train_epoch(epoch, on_step=lambda seconds, samples, loss: None)
    return training


def log_run(
    config: RunConfig, training: Training, metrics: dict[str, float], tags: dict[str, str] | None = None
) -> str:
    """A run of `config` holding `metrics` at its last epoch and its model, logged as the loop logs them; its id."""
    uri, run_id = start_run(config, "tiny", tags)
    with EpochLogger(uri, run_id) as logger:
        logger.log_step_once(config.epochs, metrics)
        logger.log_model_once(training.model, training.task.example_inputs(2), config, step=config.epochs)
    return run_id
