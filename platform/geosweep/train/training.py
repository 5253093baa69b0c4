"""One rank's training: the task, the run's one model, its optimizer, and the one epoch loop every task shares.

The task supplies its batches, its loss and its metrics (tasks/base.py); the
loop here owns what every task's step has in common: timing, autocast,
zero_grad / backward / step, gradient clipping where the task asks for it,
the amortised hyperparameter, the all-reduced mean loss and samples/s, and
the learning-rate schedule's step after each epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from geosweep import random_streams
from geosweep.config import RunConfig
from geosweep.model import Model
from geosweep.registry import TASKS
from geosweep.tasks.base import Task
from geosweep.tasks.evaluation import all_reduce_sum
from geosweep.train.components import make_optimizer, make_scheduler, seed_everything

OnStep = Callable[[float, int, torch.Tensor], None]  # (seconds, samples, loss) after every optimizer step


class Training:
    """Builds one rank's task, model, optimizer and schedule: identical data and initial weights on every rank.

    Args:
        config: the run.
        rank: this worker's world rank.
        world_size: how many workers train together.
        device: where this rank trains.
    """

    def __init__(self, config: RunConfig, rank: int, world_size: int, device: torch.device) -> None:
        self.config, self.rank, self.world_size, self.device = config, rank, world_size, device
        seed_everything(config.seed)
        self.task: Task = TASKS.build(config.task.name, config.task.kwargs)
        self.model: Model = self.task.setup(config, rank, world_size, device)
        self.optimizer = make_optimizer(config, self.model)
        self.scheduler = make_scheduler(config, self.optimizer)  # checkpointed with the optimizer
        self.ddp_model: torch.nn.Module = self.model  # the same model, wrapped by `distribute`

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds to continue this training: weights, optimizer, schedule and the task's state."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "task": self.task.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's `state_dict` (before `distribute`)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])  # the schedule continues where it stopped
        self.task.load_state_dict(state["task"])

    def distribute(self, prepare_model: Callable[[torch.nn.Module], torch.nn.Module]) -> None:
        """Move to the device and wrap for DDP by `prepare_model` (after a resume loaded the weights).

        Under DDP, backward averages the gradients over the ranks.
        """
        self.model.to(self.device)
        self.ddp_model = prepare_model(self.model)

    def train_epoch(self, epoch: int, on_step: OnStep) -> dict[str, float]:
        """One pass over the task's batches; returns the means over all ranks, the throughput, the task's updates."""
        config, task = self.config, self.task
        # Each rank draws its own streams (dropout, stochastic representations, sampling), started afresh
        # per epoch: a run resumed at this epoch draws what an uninterrupted one would.
        torch.manual_seed(random_streams.torch_seed("torch.rank", config.seed, self.rank, epoch))
        hyperparam_rng = random_streams.generator("amortised.hyperparam", config.seed, self.rank, epoch)
        self.ddp_model.train()
        started = time.perf_counter()
        sums: torch.Tensor | None = None  # loss, then the task's per-step metrics
        steps = 0
        for batch in task.batches(epoch):
            step_started = time.perf_counter()
            hyperparams = self.model.sample_hyperparams(hyperparam_rng)  # {} unless a hypernet amortises one
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                outputs = self.ddp_model(**batch.inputs)
            loss, step_metrics = task.loss(outputs, batch.targets, **hyperparams)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if task.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), task.grad_clip)
            self.optimizer.step()
            values = torch.stack([loss.detach(), *(value.detach() for value in step_metrics.values())])
            sums = values if sums is None else sums + values
            steps += 1
            on_step(time.perf_counter() - step_started, config.batch_size, loss)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the epoch's queued kernels count in its seconds
        seconds = time.perf_counter() - started
        lr = self.scheduler.get_last_lr()[0]  # this epoch's
        self.scheduler.step()
        means = (all_reduce_sum(sums, self.world_size) / (steps * self.world_size)).tolist()
        return {
            "train_loss": means[0],
            "lr": lr,
            **{f"train_{name}": mean for name, mean in zip(step_metrics, means[1:], strict=True)},
            "epoch_seconds": seconds,
            "samples_per_sec": steps * config.batch_size * self.world_size / seconds,
            **self.model.diagnostics(),
            **task.end_epoch(),
        }
