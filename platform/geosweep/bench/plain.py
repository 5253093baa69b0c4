"""The baseline every benchmark compares against: the same model and data in a plain one-process PyTorch loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from geosweep import random_streams
from geosweep.config import RunConfig
from geosweep.data import PointCloudSplits, Split, rotate_evaluation_splits
from geosweep.data.augmentation import augment
from geosweep.model import Model, build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tasks.base import Task
from geosweep.train.components import make_optimizer, make_scheduler, seed_everything

Transform = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]  # (training points, the epoch's stream)


@dataclass(frozen=True)
class Epoch:
    """One epoch of the plain loop: its seconds and validation accuracy."""

    seconds: float  # training plus validation and test scoring, as geosweep does every epoch
    train_seconds: float
    val_acc: float


@dataclass(frozen=True)
class Trained:
    """What the plain loop leaves: every epoch's figures, and the model with its task and data to score it on."""

    epochs: list[Epoch]
    model: Model
    task: Task
    data: PointCloudSplits


def train_in_process(
    config: RunConfig,
    on_epoch: Callable[[Epoch], None] | None = None,
    device: str = "cpu",
    transform: Transform | None = None,
) -> Trained:
    """Train `config` for its epochs in this process, with no Ray, DDP, checkpoints or MLflow.

    As geosweep's epoch loop does, each step draws the amortised hyperparameter (if a hypernetwork
    amortises one) and the task's loss takes it.

    Args:
        config: the run (its precision too: bf16 runs the forward under autocast, as geosweep does).
        on_epoch: called after each epoch (a plain Tune trainable reports there).
        device: where to train.
        transform: applied to each training batch after the config's rotation and augmentation,
            with the epoch's augmentation stream (e.g. a random scale per cloud).

    Returns:
        Every epoch's seconds and validation accuracy, and the trained model.
    """
    seed_everything(config.seed)
    data = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
    data = rotate_evaluation_splits(data, config.dataset.rotation.train, config.dataset.rotation.test, config.seed)
    task = TASKS.build(config.task.name, config.task.kwargs)
    model = build_model(config, dim=data.dim, out_dim=data.num_classes).to(device)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    loader = DataLoader(
        TensorDataset(*as_tensors(data.train)), batch_size=config.batch_size, shuffle=True, drop_last=True
    )
    val, test = (tuple(t.to(device) for t in as_tensors(split)) for split in (data.val, data.test))
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    rotation, augmentation = config.dataset.rotation.train, config.dataset.augmentation  # drawn every epoch
    epochs = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        rng = random_streams.generator("augment.train", config.seed, 0, epoch)
        hyperparam_rng = random_streams.generator("amortised.hyperparam", config.seed, 0, epoch)
        for points, labels in loader:
            points = torch.from_numpy(augment(points.numpy(), rotation, augmentation, rng))
            if transform:
                points = transform(points, rng)
            hyperparams = model.sample_hyperparams(hyperparam_rng)
            with autocast:
                outputs = model(points.to(device))
            loss, _ = task.loss(outputs, labels.to(device), **hyperparams)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        if device != "cpu":
            torch.cuda.synchronize(device)  # the queued kernels belong to this epoch's time
        trained = time.perf_counter()
        model.eval()
        with torch.no_grad(), autocast:
            correct = [
                sum(task.num_correct(model(x[i : i + 256]), y[i : i + 256]).item() for i in range(0, len(x), 256))
                for x, y in (val, test)
            ]
        epochs.append(Epoch(time.perf_counter() - started, trained - started, correct[0] / len(val[0])))
        if on_epoch:
            on_epoch(epochs[-1])
    return Trained(epochs, model, task, data)


def as_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's points and labels as tensors."""
    return torch.from_numpy(split.points), torch.from_numpy(split.labels)
