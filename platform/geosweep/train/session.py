"""Where the training loop runs, and so where its reports and checkpoints go.

- `RayTrainWorker`: one rank of a Ray Train worker group (any number of DDP ranks; gloo on CPU, nccl on GPU).
  Train's controller persists each checkpoint, restarts the group after a failure, and a sweep's
  TuneReportCallback passes each report on to Tune.
- `TuneTrial`: the only rank, in a Tune trial's own process. A one-worker CPU trial needs no worker group:
  Train's controller and worker processes would cost several seconds of start-up per trial and add nothing
  (no gradients to average). Tune persists the checkpoints, restarts a failed trial from the last one, and
  its scheduler reads each report directly.
"""

from __future__ import annotations

from typing import Protocol

import ray.train
import ray.train.torch
import torch
from ray import tune


class Session(Protocol):
    """What the loop needs from where it runs."""

    name: str  # the run's `train.session` tag
    rank: int
    world_size: int
    device: torch.device
    checkpoint_type: type[ray.train.Checkpoint]  # what `report` takes

    def latest_checkpoint(self) -> ray.train.Checkpoint | None:
        """The checkpoint to resume from (after a failure, or a resumed sweep), if any."""

    def report(self, metrics: dict[str, float], checkpoint: ray.train.Checkpoint | None) -> None:
        """Hand one epoch's metrics (and rank 0's checkpoint) over; a collective where ranks train together."""

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on this rank's device, wrapped for DDP where ranks train together."""


class RayTrainWorker:
    """One rank of a Ray Train worker group."""

    name = "ray_train_worker"
    checkpoint_type = ray.train.Checkpoint

    def __init__(self) -> None:
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()

    def latest_checkpoint(self) -> ray.train.Checkpoint | None:  # noqa: D102 (Session's)
        return ray.train.get_checkpoint()

    def report(self, metrics: dict[str, float], checkpoint: ray.train.Checkpoint | None) -> None:  # noqa: D102
        ray.train.report(metrics, checkpoint=checkpoint)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:  # noqa: D102
        return ray.train.torch.prepare_model(model)


class TuneTrial:
    """The only rank, on the CPU, in a Tune trial's own process."""

    name = "tune_trial"
    rank, world_size, device = 0, 1, torch.device("cpu")
    checkpoint_type = tune.Checkpoint

    def latest_checkpoint(self) -> ray.train.Checkpoint | None:  # noqa: D102 (Session's)
        return tune.get_checkpoint()

    def report(self, metrics: dict[str, float], checkpoint: ray.train.Checkpoint | None) -> None:  # noqa: D102
        tune.report(metrics, checkpoint=checkpoint)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:  # noqa: D102
        return model.to(self.device)
