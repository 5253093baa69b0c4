"""A run resumed from a checkpoint trains exactly as the uninterrupted run: same batches, same draws, same losses.

Every stream a run draws from while training (torch's generator, fresh TSP instances, amortised
hyperparameters) starts afresh each epoch from (seed, rank, epoch), so the checkpoint needs no
generator state. Driven through train/training.py and train/checkpoint.py's own round trip.
"""

import pytest
import torch

from geosweep.config import parse_run_config
from geosweep.train.checkpoint import checkpoint_dir, load_state
from geosweep.train.training import Training

TSP = {
    "task": {"name": "tsp", "kwargs": {"baseline": "rollout", "epoch_size": 64, "baseline_eval_size": 32}},
    "dataset": {"name": "tsp", "kwargs": {"num_nodes": 8, "val_size": 16, "test_size": 8, "reference": "none"}},
    "representation": {"name": "tinv_mds"},
    "backbone": {
        "name": "attention_model",
        "kwargs": {"embed_dim": 8, "num_layers": 1, "num_heads": 2, "ff_hidden": 16},
    },
    "batch_size": 32,
}
CLOUDS = {  # dropout and a stochastic representation: both draw from torch's generator
    "dataset": {
        "name": "shapes",
        "kwargs": {"num_points": 32, "train_per_class": 2, "val_per_class": 1, "test_per_class": 1},
    },
    "representation": {"name": "raw_aug", "kwargs": {"group": "so3"}},
    "backbone": {"name": "pointnet", "kwargs": {"point_widths": [8], "head_widths": [8], "dropout": 0.5}},
    "hypernet": {
        "name": "mip",
        "kwargs": {
            "hidden": [4],
            "condition": "hyperparam",
            "amortised": {"name": "label_smoothing", "low": 0.0, "high": 0.2, "grid": [0.1]},
        },
    },
    "batch_size": 8,
}


def train(training: Training, epochs: range) -> list[float]:
    losses: list[float] = []
    for epoch in epochs:
        training.train_epoch(epoch, on_step=lambda seconds, samples, loss: losses.append(loss.item()))
    return losses


@pytest.mark.parametrize("raw", [TSP, CLOUDS], ids=["tsp", "classification"])
def test_a_resumed_run_continues_the_uninterrupted_runs_streams(raw, tmp_path):
    torch.set_num_threads(1)
    raw = {**raw, "epochs": 3, "seed": 0, "cache": {"dir": str(tmp_path / "cache")}}
    if raw["dataset"]["name"] == "tsp":
        raw["dataset"] = {"name": "tsp", "kwargs": {**raw["dataset"]["kwargs"], "data_dir": str(tmp_path / "tsp")}}
    config = parse_run_config(raw)

    def build() -> Training:
        return Training(config, rank=0, world_size=1, device=torch.device("cpu"))

    uninterrupted = train(build(), range(1, 4))

    first = build()
    before = train(first, range(1, 2))
    model, optimizer, task = first.model.state_dict(), first.optimizer.state_dict(), first.task.state_dict()
    state = {"model": model, "optimizer": optimizer, "task": task, "epoch": 1}  # what the loop checkpoints
    with checkpoint_dir(state) as checkpoint:
        saved = load_state(checkpoint)
    resumed = build()  # a new worker: its own process, seeded afresh
    resumed.model.load_state_dict(saved["model"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    resumed.task.load_state_dict(saved["task"])
    after = train(resumed, range(2, 4))

    assert before + after == pytest.approx(uninterrupted, rel=1e-6)
    assert len(uninterrupted) > 3
