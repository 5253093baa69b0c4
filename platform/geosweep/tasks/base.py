"""What the training loop asks of a task: its data and model, its batches, its loss and its metrics.

A task is one class, registered once in `TASKS` with the problem it is for
(`kind`); the one epoch loop in train/training.py runs every task the same way:
for each batch, the model's forward on `batch.inputs`, then `task.loss`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

if TYPE_CHECKING:
    from geosweep.config import RunConfig
    from geosweep.data import PointCloudSplits
    from geosweep.data.tsp import TSPData
    from geosweep.model import Model


# What the shared epoch loop (train/training.py) reports for every task, every epoch.
LOOP_METRICS = ("train_loss", "lr", "epoch_seconds", "samples_per_sec")


@dataclass(frozen=True)
class Batch:
    """One training step's data on the rank's device."""

    inputs: dict[str, Any]  # the model's keyword arguments, e.g. {"frames": ...} or {"cities": ..., "decode": ...}
    targets: torch.Tensor  # what the loss scores the outputs against (labels, or the cities themselves)


class Task(Protocol):
    """One task's training on one rank; built identically on every rank from the same seed."""

    grad_clip: float | None  # gradient-norm clipping of every step, or None
    # The task's own per-epoch metrics (evaluate()'s keys, `train_` + loss()'s); a sweep may stop and rank on
    # these and LOOP_METRICS.
    epoch_metrics: ClassVar[tuple[str, ...]]
    # The dataset as its registry entry built it, set by setup (clouds in canonical pose; TSP's fixed sets).
    data: PointCloudSplits | TSPData

    def setup(self, config: RunConfig, rank: int, world_size: int, device: torch.device) -> Model:
        """Build this rank's data and the run's one model (on the CPU; the loop moves and wraps it)."""
        ...

    def start_metrics(self) -> dict[str, float]:
        """Step 0 (rank 0): what the data and representation cost, and the untrained floor."""
        ...

    def batches(self, epoch: int) -> Iterator[Batch]:
        """This rank's batches of one epoch; every rank yields the same number."""
        ...

    def loss(self, outputs: Any, targets: torch.Tensor, **hyperparams: float) -> tuple[torch.Tensor, dict]:
        """The step's loss and per-step metrics to average (tensors); hyperparams are amortised values by name."""
        ...

    def end_epoch(self) -> dict[str, float]:
        """Task state updated once per epoch (the rollout baseline's t-test); a collective."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Validation and test metrics; a collective: every rank scores its shard."""
        ...

    def final_metrics(self) -> dict[str, float]:
        """Rank 0 only, after the last epoch."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Task state beyond model and optimizer (a baseline), for checkpoints."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s output after a resume."""
        ...

    def example_inputs(self, count: int) -> dict[str, torch.Tensor]:
        """The first `count` test instances as the model's keyword arguments (the logged model's signature)."""
        ...
