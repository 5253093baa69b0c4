"""The per-worker training loop that Ray Train runs on every rank (DDP: gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import math
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
from geosweep.data import PointCloudSplits, Split, apply_rotation_protocols
from geosweep.hypernets.hypernetwork import Hypernetwork
from geosweep.model import InvariantModel, PrecomputedFrames, build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tracking import EpochLogger
from geosweep.representations.base import ambiguity_stats
from geosweep.train.checkpoint import checkpoint_dir, load_state
from geosweep.train.evaluate import accuracy, all_reduce_sum, robustness_and_certificate
from geosweep.train.inputs import prepare_inputs


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

    # --- data: every rank generates the same splits (canonical pose kept for the robustness table)
    canonical = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
    data = apply_rotation_protocols(
        canonical, config.dataset.rotation.train, config.dataset.rotation.test, seed=config.seed
    )

    # --- model, task and optimizer
    task = TASKS.build(config.task.name, config.task.kwargs)
    model = build_model(config, dim=data.dim, out_dim=task.output_dim(data.num_classes))
    optimizer = make_optimizer(config, model)

    # --- inputs: points, or a deterministic representation's cached frames fed straight to the backbone
    inputs = prepare_inputs(config, data, model.representation, rank)
    trained = InvariantModel(PrecomputedFrames(), model.backbone) if inputs.precomputed else model
    train_set = TensorDataset(inputs.train, torch.from_numpy(data.train.labels))
    sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed, drop_last=True)
    train_loader = ray.train.torch.prepare_data_loader(
        DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, drop_last=True)
    )
    val_labels, test_labels = torch.from_numpy(data.val.labels), torch.from_numpy(data.test.labels)
    hypernet = model.backbone if isinstance(model.backbone, Hypernetwork) else None
    amortised = hypernet.amortised if hypernet and hypernet.condition == "hyperparam" else None
    amortised_rng = np.random.default_rng(np.random.SeedSequence([config.seed, rank, 3000]))
    seed_everything(config.seed + 1 + rank)

    # --- resume from the last checkpoint (after a worker failure)
    logger = EpochLogger(loop_config["tracking_uri"], loop_config["run_id"]) if rank == 0 else None
    if logger:
        logger.set_tag("device", str(device))
        logger.set_tag("ddp.backend", dist.get_backend() if dist.is_initialized() else "none")
    start_epoch = 1
    checkpoint = ray.train.get_checkpoint()
    if logger and checkpoint is None:  # step 0: what the data and representation cost before training
        logger.log_metrics(0, inputs.metrics | ambiguity_metrics(canonical))
    if checkpoint is not None:
        state = load_state(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
        if logger:
            logger.set_tag("resumed_from_epoch", str(state["epoch"]))
            # A failure between the checkpoint and MLflow may have lost the last epoch's metrics.
            logger.log_epoch_once(state["epoch"], state["metrics"])
    model.to(device)
    trained = ray.train.torch.prepare_model(trained)  # DDP over the shared backbone
    module = trained.module if isinstance(trained, torch.nn.parallel.DistributedDataParallel) else trained

    for epoch in range(start_epoch, config.epochs + 1):
        maybe_inject_failure(loop_config.get("inject_failure"), rank, epoch)

        # --- train one epoch
        sampler.set_epoch(epoch)
        trained.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for points, labels in train_loader:
            overrides = {}
            if amortised:  # each batch trains the hypernetwork at another value of the hyperparameter
                value = float(amortised_rng.uniform(amortised.low, amortised.high))
                hypernet.set_hyperparam(value)
                overrides = {amortised.name: value}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                loss = task.loss(trained(points), labels, **overrides)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
        seconds = time.perf_counter() - started
        num_batches = len(train_loader)
        diagnostics = {k: v.item() for k, v in hypernet.diagnostics.items()} if hypernet else {}

        train_loss = all_reduce_sum(loss_sum, world_size).item() / (num_batches * world_size)
        if not math.isfinite(train_loss):  # every rank sees the same sum, so all stop together
            raise FloatingPointError(f"training diverged: non-finite mean loss ({train_loss}) in epoch {epoch}")

        # --- evaluate (each rank a shard, counts summed across ranks; amortised runs at the grid's first value)
        if amortised:
            hypernet.set_hyperparam(amortised.grid[0])
        metrics = {
            "train_loss": train_loss,
            "val_acc": accuracy(module, task, inputs.val, val_labels, rank, world_size, device),
            "test_acc": accuracy(module, task, inputs.test, test_labels, rank, world_size, device),
            "epoch_seconds": seconds,
            "samples_per_sec": num_batches * config.batch_size * world_size / seconds,
            **diagnostics,
        }

        # --- report (a collective: every rank calls it; rank 0 attaches the checkpoint)
        state = None
        if rank == 0:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "metrics": metrics,
                "config": config.model_dump(mode="json"),
            }
        with checkpoint_dir(state) as ray_checkpoint:
            ray.train.report({**metrics, "epoch": epoch}, checkpoint=ray_checkpoint)
        if logger:  # after the checkpoint is safe; an epoch re-run after a failure is not logged twice
            logger.log_epoch_once(epoch, metrics)

    # --- after training (rank 0): rotation-robustness table, invariance certificate, final model
    if logger:
        final = robustness_and_certificate(
            model, task, canonical.test.points, canonical.test.labels, model.representation.invariances,
            samples=config.certify.samples, max_clouds=config.certify.max_clouds, seed=config.seed, device=device,
        )  # fmt: skip
        if amortised:  # one trial covers a slice of the sweep: every grid value, scored
            for value in amortised.grid:
                hypernet.set_hyperparam(value)
                for split, x, y in (("val", inputs.val, val_labels), ("test", inputs.test, test_labels)):
                    key = f"amortised/{amortised.name}:{value:g}/{split}_acc"  # MLflow names allow no "="
                    final[key] = accuracy(module, task, x, y, 0, 1, device)
            hypernet.set_hyperparam(amortised.grid[0])
        logger.log_metrics(config.epochs, final)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            torch.save({"model": model.state_dict(), "config": config.model_dump(mode="json")}, path)
            logger.log_artifact(path)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def as_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(split.points), torch.from_numpy(split.labels)


def ambiguity_metrics(data: PointCloudSplits, chunk: int = 1024) -> dict[str, float]:
    """Where a single canonical frame loses invariance: near-symmetric clouds and near-repeated eigenvalues.

    Counted over the whole dataset, in chunks (the statistics work in float64).
    """
    counts = {"num_samples": 0, "ambiguous_sign_count": 0, "small_eigengap_count": 0}
    for split in (data.train, data.val, data.test):
        for start in range(0, len(split.points), chunk):
            stats = ambiguity_stats(torch.from_numpy(split.points[start : start + chunk]))
            for key in counts:
                counts[key] += stats[key]
    total = max(counts["num_samples"], 1)
    return {
        "repr/ambiguous_sign_frac": counts["ambiguous_sign_count"] / total,
        "repr/small_eigengap_frac": counts["small_eigengap_count"] / total,
    }


def make_optimizer(config: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    spec = config.optimizer
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[spec.name]
    return optimizer_class(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


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
