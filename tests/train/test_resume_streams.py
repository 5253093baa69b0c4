"""A run resumed from a checkpoint trains exactly as the uninterrupted run: same batches, same draws, same losses.

Every stream a run draws from while training (torch's generator, fresh TSP instances, amortised
hyperparameters, the training clouds' rotations and augmentation) starts afresh each epoch from
(seed, rank, epoch), so the checkpoint needs no generator state; the learning-rate schedule is
checkpointed. Driven through train/training.py and train/checkpoint.py's own round trip.
"""

from collections.abc import Callable

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
CLOUDS = {  # dropout and a stochastic representation draw from torch's generator; rotation and jitter per epoch
    "dataset": {
        "name": "shapes",
        "kwargs": {"num_points": 32, "train_per_class": 2, "val_per_class": 1, "test_per_class": 1},
        "rotation": {"train": "so3"},
        "augmentation": {"scale": {"low": 0.8, "high": 1.25}, "jitter": {"sigma": 0.01, "clip": 0.05}},
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
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "schedule": {"name": "cosine"}},
    "batch_size": 8,
}


def train(training: Training, epochs: range) -> list[float]:
    losses: list[float] = []
    for epoch in epochs:
        training.train_epoch(epoch, on_step=lambda seconds, samples, loss: losses.append(loss.item()))
    return losses


def build(raw: dict, tmp_path) -> Callable[[], Training]:
    """A factory of rank 0's Training for `raw` (3 epochs), each built as a fresh worker would build it."""
    torch.set_num_threads(1)
    raw = {**raw, "epochs": 3, "seed": 0, "cache": {"dir": str(tmp_path / "cache")}}
    if raw["dataset"]["name"] == "tsp":
        raw["dataset"] = {"name": "tsp", "kwargs": {**raw["dataset"]["kwargs"], "data_dir": str(tmp_path / "tsp")}}
    config = parse_run_config(raw)
    return lambda: Training(config, rank=0, world_size=1, device=torch.device("cpu"))


def round_trip(training: Training, epoch: int) -> dict:
    """The loop's checkpoint of `training` after `epoch`, written and read back."""
    with checkpoint_dir({**training.state_dict(), "epoch": epoch}) as checkpoint:
        return load_state(checkpoint)


@pytest.mark.parametrize("raw", [TSP, CLOUDS], ids=["tsp", "classification"])
def test_a_resumed_run_continues_the_uninterrupted_runs_streams(raw, tmp_path):
    new_worker = build(raw, tmp_path)
    uninterrupted = train(new_worker(), range(1, 4))

    first = new_worker()
    before = train(first, range(1, 2))
    resumed = new_worker()  # its own process, seeded afresh
    resumed.load_state_dict(round_trip(first, epoch=1))
    after = train(resumed, range(2, 4))

    assert before + after == pytest.approx(uninterrupted, rel=1e-6)
    assert len(uninterrupted) > 3


@pytest.mark.parametrize("raw", [TSP, CLOUDS], ids=["tsp", "classification"])
def test_a_fallback_to_an_older_checkpoint_reruns_epochs_with_the_numbers_mlflow_already_holds(raw, tmp_path):
    """The latest checkpoint was lost (cut off mid-write): epochs after the one before it run again.

    MLflow keeps each epoch's first write; the rerun must reproduce it, or the logged numbers
    would disagree with the weights that training goes on from.
    """
    new_worker = build(raw, tmp_path)
    first, logged, checkpoints = new_worker(), {}, {}
    for epoch in (1, 2, 3):
        logged[epoch] = deterministic(first.train_epoch(epoch, on_step=lambda *_: None) | first.task.evaluate())
        checkpoints[epoch] = round_trip(first, epoch)

    fallback = new_worker()
    fallback.load_state_dict(checkpoints[1])
    rerun = {
        epoch: deterministic(fallback.train_epoch(epoch, on_step=lambda *_: None) | fallback.task.evaluate())
        for epoch in (2, 3)
    }

    assert rerun == {epoch: pytest.approx(logged[epoch], rel=1e-6, nan_ok=True) for epoch in (2, 3)}
    assert {"train_loss", "val_acc" if raw is CLOUDS else "val_tour_len"} <= set(rerun[3])


def deterministic(metrics: dict[str, float]) -> dict[str, float]:
    """An epoch's metrics less its clock readings."""
    return {k: v for k, v in metrics.items() if "seconds" not in k and "per_sec" not in k}
