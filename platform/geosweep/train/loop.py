"""The per-worker training loop that Ray Train runs on every rank (DDP: gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from geosweep.config import RunConfig
from geosweep.data import Split, apply_rotation_protocols
from geosweep.model import build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tracking import EpochLogger
from geosweep.train.checkpoint import checkpoint_dir, load_state


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Train one config on this rank; rank 0 checkpoints and logs to MLflow.

    Args:
        loop_config: {"config": RunConfig as a dict, "tracking_uri": str, "run_id": str,
            and optionally "inject_failure": {"rank", "epoch", "marker"} for fault-tolerance tests}.
    """
    config = RunConfig.model_validate(loop_config["config"])  # validated again where it runs
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()

    # --- seeding: identical initial weights on every rank, then per-rank streams
    seed_everything(config.seed)

    # --- data: every rank generates the same splits; samplers shard them
    dataset = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
    dataset = apply_rotation_protocols(
        dataset, config.dataset.rotation.train, config.dataset.rotation.test, seed=config.seed
    )
    train_set = TensorDataset(*as_tensors(dataset.train))
    sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed, drop_last=True)
    train_loader = ray.train.torch.prepare_data_loader(
        DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, drop_last=True)
    )

    # --- model, task and optimizer
    task = TASKS.build(config.task.name, config.task.kwargs)
    model = build_model(config, dim=dataset.dim, out_dim=task.output_dim(dataset.num_classes))
    optimizer = make_optimizer(config, model)
    seed_everything(config.seed + 1 + rank)

    # --- resume from the last checkpoint (after a worker failure)
    logger = EpochLogger(loop_config["tracking_uri"], loop_config["run_id"]) if rank == 0 else None
    if logger:
        logger.set_tag("device", str(device))
        logger.set_tag("ddp.backend", dist.get_backend() if dist.is_initialized() else "none")
    start_epoch = 1
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        state = load_state(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
        if logger:
            logger.set_tag("resumed_from_epoch", str(state["epoch"]))
            # A failure between the checkpoint and MLflow may have lost the last epoch's metrics.
            logger.log_epoch_once(state["epoch"], state["metrics"])
    model = ray.train.torch.prepare_model(model)
    module = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model

    for epoch in range(start_epoch, config.epochs + 1):
        maybe_inject_failure(loop_config.get("inject_failure"), rank, epoch)

        # --- train one epoch
        sampler.set_epoch(epoch)
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for points, labels in train_loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                loss = task.loss(model(points), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
        seconds = time.perf_counter() - started
        num_batches = len(train_loader)

        # --- evaluate (each rank a shard, counts summed across ranks)
        metrics = {
            "train_loss": all_reduce_sum(loss_sum).item() / (num_batches * world_size),
            "val_acc": accuracy(module, task, dataset.val, rank, world_size, device),
            "test_acc": accuracy(module, task, dataset.test, rank, world_size, device),
            "epoch_seconds": seconds,
            "samples_per_sec": num_batches * config.batch_size * world_size / seconds,
        }

        # --- report (a collective: every rank calls it; rank 0 attaches the checkpoint)
        state = None
        if rank == 0:
            state = {
                "model": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "metrics": metrics,
                "config": config.model_dump(mode="json"),
            }
        with checkpoint_dir(state) as ray_checkpoint:
            ray.train.report({**metrics, "epoch": epoch}, checkpoint=ray_checkpoint)
        if logger:  # after the checkpoint is safe; an epoch re-run after a failure is not logged twice
            logger.log_epoch_once(epoch, metrics)

    # --- final model as an MLflow artifact
    if logger:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            torch.save({"model": module.state_dict(), "config": config.model_dump(mode="json")}, path)
            logger.log_artifact(path)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def as_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(split.points), torch.from_numpy(split.labels)


def make_optimizer(config: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    spec = config.optimizer
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[spec.name]
    return optimizer_class(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
    return value


@torch.no_grad()
def accuracy(
    module: torch.nn.Module, task: Any, split: Split, rank: int, world_size: int, device: torch.device
) -> float:
    """Accuracy over the whole split; each rank scores every world_size-th sample.

    Runs the unwrapped module: DDP's forward would need equal work on every rank.
    """
    module.eval()
    points, labels = (t[rank::world_size] for t in as_tensors(split))
    counts = torch.zeros(2, device=device)
    for start in range(0, len(points), 256):
        batch_points = points[start : start + 256].to(device)
        batch_labels = labels[start : start + 256].to(device)
        counts[0] += task.num_correct(module(batch_points), batch_labels)
        counts[1] += len(batch_labels)
    correct, total = all_reduce_sum(counts).tolist()
    return correct / total


def maybe_inject_failure(spec: dict[str, Any] | None, rank: int, epoch: int) -> None:
    """Kill this worker process once, at the given rank and epoch (fault-tolerance tests).

    It dies `delay_s` into the epoch, as a real crash mid-epoch would: Ray Train's
    controller registers a reported checkpoint on its next health check, so a
    death right after a report may fall back to the checkpoint before it.
    """
    if spec and rank == spec["rank"] and epoch == spec["epoch"] and not Path(spec["marker"]).exists():
        Path(spec["marker"]).touch()
        time.sleep(spec.get("delay_s", 0.0))
        os._exit(1)
