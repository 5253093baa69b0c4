"""What every task's training shares: seeding, and the optimizer and learning-rate schedule a run config names."""

from __future__ import annotations

import random

import numpy as np
import torch

from geosweep.config import RunConfig


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (identical initial weights on every rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(config: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names, over `model`'s parameters."""
    spec = config.optimizer
    if spec.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return optimizer_class(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


def make_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule `config.optimizer.schedule` names: epoch e trains at its (e-1)th value."""
    schedule = config.optimizer.schedule
    if schedule.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=schedule.min_lr)
    if schedule.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
