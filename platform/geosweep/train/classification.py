"""Point-cloud classification on one rank: cached frames in, cross-entropy, sharded accuracy."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray.train.torch
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from geosweep.config import RunConfig
from geosweep.data import Split, apply_rotation_protocols
from geosweep.hypernets.hypernetwork import Hypernetwork
from geosweep.model import InvariantModel, PrecomputedFrames, build_model
from geosweep.registry import DATASETS
from geosweep.train.components import make_optimizer
from geosweep.train.evaluate import accuracy, all_reduce_sum, ambiguity_fractions, robustness_and_certificate
from geosweep.train.inputs import prepare_inputs


class ClassificationTraining:
    """Builds data, model and inputs for one rank, then trains and scores them epoch by epoch."""

    def __init__(self, config: RunConfig, task: Any, rank: int, world_size: int, device: torch.device) -> None:
        self.config, self.task, self.rank, self.world_size, self.device = config, task, rank, world_size, device
        # every rank generates the same splits (canonical pose kept for the robustness table)
        self.canonical = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
        data = apply_rotation_protocols(
            self.canonical, config.dataset.rotation.train, config.dataset.rotation.test, seed=config.seed
        )
        self.model = build_model(config, dim=data.dim, out_dim=task.output_dim(data.num_classes))
        self.optimizer = make_optimizer(config, self.model)

        # a deterministic representation's cached frames are fed straight to the backbone
        self.inputs = prepare_inputs(config, data, self.model.representation, rank)
        self.trained: torch.nn.Module = (
            InvariantModel(PrecomputedFrames(), self.model.backbone) if self.inputs.precomputed else self.model
        )
        train_set = TensorDataset(self.inputs.train, torch.from_numpy(data.train.labels))
        self.sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed, drop_last=True)
        self.loader = ray.train.torch.prepare_data_loader(
            DataLoader(train_set, batch_size=config.batch_size, sampler=self.sampler, drop_last=True)
        )
        self.val_labels, self.test_labels = torch.from_numpy(data.val.labels), torch.from_numpy(data.test.labels)
        backbone = self.model.backbone
        self.hypernet = backbone if isinstance(backbone, Hypernetwork) else None
        self.amortised = self.hypernet.amortised if self.hypernet and self.hypernet.condition == "hyperparam" else None
        self.amortised_rng = np.random.default_rng(np.random.SeedSequence([config.seed, rank, 3000]))
        self.module = self.trained

    def start_metrics(self) -> dict[str, float]:
        splits = (self.canonical.train, self.canonical.val, self.canonical.test)
        return self.inputs.metrics | ambiguity_fractions([split.points for split in splits])

    def prepare(self) -> None:
        """Wrap for DDP (after a resume loaded the weights): gradients averaged over the shared backbone."""
        self.model.to(self.device)
        self.trained = ray.train.torch.prepare_model(self.trained)
        self.module = getattr(self.trained, "module", self.trained)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def train_epoch(self, epoch: int, on_step: Any) -> dict[str, float]:
        """One pass over this rank's shard; returns the mean loss over all ranks and the throughput."""
        self.sampler.set_epoch(epoch)
        self.trained.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        for points, labels in self.loader:
            step_started = time.perf_counter()
            overrides = {}
            if self.amortised:  # each batch trains the hypernetwork at another value of the hyperparameter
                value = float(self.amortised_rng.uniform(self.amortised.low, self.amortised.high))
                self.hypernet.set_hyperparam(value)
                overrides = {self.amortised.name: value}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                loss = self.task.loss(self.trained(points), labels, **overrides)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            on_step(time.perf_counter() - step_started, len(labels), loss)
        seconds = time.perf_counter() - started
        num_batches = len(self.loader)
        diagnostics = {k: v.item() for k, v in self.hypernet.diagnostics.items()} if self.hypernet else {}
        return {
            "train_loss": all_reduce_sum(loss_sum, self.world_size).item() / (num_batches * self.world_size),
            "epoch_seconds": seconds,
            "samples_per_sec": num_batches * self.config.batch_size * self.world_size / seconds,
            **diagnostics,
        }

    def evaluate(self) -> dict[str, float]:
        """Accuracy on val and test, each rank a shard (amortised runs at the grid's first value)."""
        if self.amortised:
            self.hypernet.set_hyperparam(self.amortised.grid[0])
        args = (self.rank, self.world_size, self.device)
        return {
            "val_acc": accuracy(self.module, self.task, self.inputs.val, self.val_labels, *args),
            "test_acc": accuracy(self.module, self.task, self.inputs.test, self.test_labels, *args),
        }

    def final_metrics(self) -> dict[str, float]:
        """Rank 0 after training: rotation-robustness table, invariance certificate, amortised grid."""
        test = self.canonical.test
        certify = self.config.certify
        final = robustness_and_certificate(
            self.model, self.task, test.points, test.labels, self.model.representation.invariances,
            samples=certify.samples, max_clouds=certify.max_clouds, seed=self.config.seed, device=self.device,
        )  # fmt: skip
        if self.amortised:  # one trial covers a slice of the sweep: every grid value, scored
            for value in self.amortised.grid:
                self.hypernet.set_hyperparam(value)
                for split, x, y in (
                    ("val", self.inputs.val, self.val_labels),
                    ("test", self.inputs.test, self.test_labels),
                ):
                    key = f"amortised/{self.amortised.name}:{value:g}/{split}_acc"  # MLflow names allow no "="
                    final[key] = accuracy(self.module, self.task, x, y, 0, 1, self.device)
            self.hypernet.set_hyperparam(self.amortised.grid[0])
        return final


def as_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(split.points), torch.from_numpy(split.labels)
