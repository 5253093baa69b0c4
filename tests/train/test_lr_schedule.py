"""The learning-rate schedule: each epoch trains at its scheduled value, SGD gets its momentum, and a run resumed
from a checkpoint continues the schedule where it stopped."""

import math

import pytest
import ray.train
import torch
from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.train.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINT_FORMAT,
    CheckpointFormatError,
    checkpoint_dir,
    load_state,
)
from geosweep.train.launch import run_training
from geosweep.train.training import Training

EPOCHS = 5


def build(tmp_path, optimizer: dict) -> Training:
    config = parse_run_config({
        "dataset": {"name": "shapes", "kwargs": {"num_points": 16, "train_per_class": 1, "val_per_class": 1,
                                                 "test_per_class": 1}},
        "representation": {"name": "raw"},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [4], "head_widths": [4]}},
        "optimizer": optimizer,
        "epochs": EPOCHS, "batch_size": 12, "scaling": {"num_workers": 1}, "seed": 0,
        "cache": {"dir": str(tmp_path / "cache")},
    })  # fmt: skip  # one line per config section
    return Training(config, rank=0, world_size=1, device=torch.device("cpu"))


def epoch_lrs(training: Training, epochs: range) -> list[float]:
    """The `lr` metric of each epoch, checked against the lr the optimizer stepped with."""
    lrs, stepped = [], []
    for epoch in epochs:
        stepped.clear()
        metrics = training.train_epoch(
            epoch, on_step=lambda *_: stepped.append(training.optimizer.param_groups[0]["lr"])
        )
        assert stepped and stepped == [metrics["lr"]] * len(stepped)
        lrs.append(metrics["lr"])
    return lrs


def cosine(epoch: int, lr: float, min_lr: float, epochs: int = EPOCHS) -> float:
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (epoch - 1) / epochs)) / 2


@pytest.mark.parametrize(
    "optimizer, expected",
    [
        ({"name": "adam", "lr": 0.01}, [0.01] * EPOCHS),
        (
            {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": {"name": "cosine", "min_lr": 0.001}},
            [cosine(epoch, 0.1, 0.001) for epoch in range(1, EPOCHS + 1)],
        ),
        (
            {"name": "adamw", "lr": 0.01, "schedule": {"name": "step", "step_size": 2, "gamma": 0.5}},
            [0.01, 0.01, 0.005, 0.005, 0.0025],
        ),
    ],
    ids=["constant", "cosine", "step"],
)
def test_each_epoch_trains_at_its_scheduled_learning_rate(tmp_path, optimizer, expected):
    assert epoch_lrs(build(tmp_path, optimizer), range(1, EPOCHS + 1)) == pytest.approx(expected, rel=1e-12)


def test_sgd_gets_its_momentum_and_weight_decay(tmp_path):
    training = build(tmp_path, {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4})
    group = training.optimizer.param_groups[0]
    assert isinstance(training.optimizer, torch.optim.SGD)
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)


@pytest.mark.parametrize(
    "schedule", [{"name": "cosine", "min_lr": 0.001}, {"name": "step", "step_size": 2, "gamma": 0.5}]
)
def test_a_resumed_run_continues_the_schedule(tmp_path, schedule):
    torch.set_num_threads(1)
    optimizer = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": schedule}
    uninterrupted = epoch_lrs(build(tmp_path, optimizer), range(1, EPOCHS + 1))

    first = build(tmp_path, optimizer)
    before = epoch_lrs(first, range(1, 3))
    state = {  # what the loop checkpoints
        "model": first.model.state_dict(),
        "optimizer": first.optimizer.state_dict(),
        "scheduler": first.scheduler.state_dict(),
        "epoch": 2,
    }
    with checkpoint_dir(state) as checkpoint:
        saved = load_state(checkpoint)  # weights_only: the schedule's state is plain data
    resumed = build(tmp_path, optimizer)  # a new worker, as train/loop.py restores it
    resumed.model.load_state_dict(saved["model"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    resumed.scheduler.load_state_dict(saved["scheduler"])
    after = epoch_lrs(resumed, range(3, EPOCHS + 1))

    assert before + after == pytest.approx(uninterrupted, rel=1e-12)
    assert len(set(uninterrupted)) > 2  # the schedule moved


@pytest.mark.integration
def test_a_replaced_worker_group_continues_the_schedule(ray_local, mlflow_uri, tiny_config, tmp_path):
    """Through train/loop.py's own checkpoint and resume, on a real Ray: the logged lr stays on the cosine."""
    schedule = {"name": "cosine", "min_lr": 0.001}
    tiny_config.update(
        epochs=3,
        failure={"max_failures": 1},
        optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": schedule},
    )
    marker = tmp_path / "rank1-died"
    result = run_training(
        parse_run_config(tiny_config),
        storage_path=tmp_path / "ray",
        inject_failure={"rank": 1, "epoch": 3, "marker": str(marker), "delay_s": 1.0},
    )
    assert marker.exists() and result.error is None
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert "resumed_from_epoch" in run.data.tags
    history = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda metric: metric.step)
    expected = [cosine(epoch, 0.1, 0.001, epochs=3) for epoch in (1, 2, 3)]
    assert [metric.step for metric in history] == [1, 2, 3]
    assert [metric.value for metric in history] == pytest.approx(expected, rel=1e-9)


def test_a_checkpoint_of_an_older_format_is_refused_by_name(tmp_path):
    torch.save({"model": {}, "optimizer": {}, "epoch": 3}, tmp_path / CHECKPOINT_FILE)  # format 1: no history
    with pytest.raises(CheckpointFormatError, match=rf"{tmp_path}.* format 1, .* resumes format {CHECKPOINT_FORMAT}"):
        load_state(ray.train.Checkpoint.from_directory(str(tmp_path)))
