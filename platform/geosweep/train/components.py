"""What every task's training shares: seeding and the optimizer a run config names."""

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
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[spec.name]
    return optimizer_class(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
