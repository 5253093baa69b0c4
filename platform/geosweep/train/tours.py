"""TSP on one rank: fresh random instances every step, REINFORCE against a baseline, gaps on fixed sets.

Each rank samples its own instances (DDP averages the gradients); validation is
sharded over ranks; the test gaps on transformed copies are rank 0's, at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import ray.train.torch
import torch

from geosweep.config import RunConfig
from geosweep.data.tours import tour_length
from geosweep.data.tsp import TSPData, transformed_variants
from geosweep.model import TourModel, build_model
from geosweep.registry import DATASETS
from geosweep.tasks.tsp import TourTask
from geosweep.train.baselines import ExponentialBaseline, RolloutBaseline
from geosweep.train.components import make_optimizer
from geosweep.train.evaluate import all_reduce_sum, ambiguity_fractions


class TourTraining:
    def __init__(self, config: RunConfig, task: TourTask, rank: int, world_size: int, device: torch.device) -> None:
        self.config, self.task, self.rank, self.world_size, self.device = config, task, rank, world_size, device
        self.data: TSPData = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
        self.model: TourModel = build_model(config, dim=2)
        self.optimizer = make_optimizer(config, self.model)
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, rank, 4000]))
        if task.baseline == "rollout":
            self.baseline = RolloutBaseline(
                self.model, self.data.sample_train, task.baseline_eval_size, task.t_test_alpha, config.seed
            )
        else:
            self.baseline = ExponentialBaseline(task.ema_beta)
        self.trained: torch.nn.Module = self.model
        self.steps_per_epoch = max(1, task.epoch_size // (config.batch_size * world_size))

    def start_metrics(self) -> dict[str, float]:
        """Step 0 (rank 0): the untrained model's and random tours' validation gaps, the floor training must beat."""
        val = self.data.val
        cities = torch.from_numpy(val.coords)
        untrained = tour_length(cities, self.model.greedy_tours(cities)).double()
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, 4500]))
        random_tours = torch.from_numpy(rng.permuted(np.tile(np.arange(self.data.num_nodes), (len(cities), 1)), axis=1))
        random = tour_length(cities, random_tours).double()
        return ambiguity_fractions([val.coords, self.data.test.coords]) | {
            "val_tour_len": untrained.mean().item(),
            "val_gap": gap_or_nan(self.task, untrained, val.ref_lengths).mean().item(),
            "val_gap/random_tour": gap_or_nan(self.task, random, val.ref_lengths).mean().item(),
        }

    def prepare(self) -> None:
        self.model.to(self.device)
        self.trained = ray.train.torch.prepare_model(self.model)

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline.load_state_dict(state["baseline"])

    def train_epoch(self, epoch: int, on_step: Callable[[float, int, torch.Tensor], None]) -> dict[str, float]:
        """`steps_per_epoch` REINFORCE steps on fresh instances, then the baseline's end-of-epoch update."""
        self.trained.train()
        started = time.perf_counter()
        sums = torch.zeros(2, device=self.device)  # loss, tour length
        batch = self.config.batch_size
        for _ in range(self.steps_per_epoch):
            step_started = time.perf_counter()
            cities = torch.from_numpy(self.data.sample_train(self.rng, batch)).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                tours, log_likelihood = self.trained(cities, decode="sample")
            lengths = tour_length(cities, tours)  # also checks that every tour is a permutation
            loss = self.task.loss(lengths, self.baseline(cities, lengths), log_likelihood.float())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.task.grad_clip)
            self.optimizer.step()
            sums += torch.stack([loss.detach(), lengths.mean()])
            on_step(time.perf_counter() - step_started, batch, loss)
        seconds = time.perf_counter() - started
        baseline_metrics = self.baseline.epoch_end(self.model)
        loss_sum, length_sum = (
            all_reduce_sum(sums, self.world_size) / (self.steps_per_epoch * self.world_size)
        ).tolist()
        return {
            "train_loss": loss_sum,
            "train_tour_len": length_sum,
            "epoch_seconds": seconds,
            "samples_per_sec": self.steps_per_epoch * batch * self.world_size / seconds,
            **baseline_metrics,
        }

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Greedy tours on the fixed validation set (each rank a shard): mean length and gap to the reference."""
        val = self.data.val
        shard = slice(self.rank, None, self.world_size)
        cities = torch.from_numpy(val.coords[shard])
        lengths = tour_length(cities, self.model.greedy_tours(cities)).double()
        gaps = gap_or_nan(self.task, lengths, val.ref_lengths, shard)
        sums = torch.tensor([lengths.sum(), gaps.sum(), len(lengths)], dtype=torch.float64, device=self.device)
        length_sum, gap_sum, count = all_reduce_sum(sums, self.world_size).tolist()
        return {"val_tour_len": length_sum / count, "val_gap": gap_sum / count}

    @torch.no_grad()
    def final_metrics(self) -> dict[str, float]:
        """Rank 0: test gaps on the original instances and on each transformed copy; how invariant the tours are."""
        test = self.data.test
        cities = torch.from_numpy(test.coords)
        original_tours = self.model.greedy_tours(cities)
        original = tour_length(cities, original_tours).double()
        metrics = {"test_gap/original": gap_or_nan(self.task, original, test.ref_lengths).mean().item()}
        max_rel_diff, agreements = 0.0, []
        for name, (coords, scale) in transformed_variants(test.coords, seed=self.config.seed).items():
            variant = torch.from_numpy(coords)
            tours = self.model.greedy_tours(variant)
            lengths = tour_length(variant, tours).double()
            references = None if test.ref_lengths is None else test.ref_lengths * scale
            metrics[f"test_gap/{name}"] = gap_or_nan(self.task, lengths, references).mean().item()
            max_rel_diff = max(max_rel_diff, ((lengths / scale - original).abs() / original).max().item())
            agreements.append(same_tours(tours, original_tours))
        metrics["invariance/tour_len_max_rel_diff"] = max_rel_diff
        metrics["invariance/tour_agreement"] = torch.cat(agreements).double().mean().item()
        return metrics


def gap_or_nan(
    task: TourTask, lengths: torch.Tensor, references: np.ndarray | None, rows: slice = slice(None)
) -> torch.Tensor:
    """Per-instance gaps in %; NaN where the set carries no reference tours (reference: none)."""
    if references is None:
        return torch.full_like(lengths, float("nan"))
    return task.gap_percent(lengths, torch.from_numpy(np.asarray(references)[rows]).to(lengths))


def same_tours(tours: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the same cycle, whatever the start city and direction."""
    return (canonical_cycle(tours) == canonical_cycle(others)).all(dim=1)


def canonical_cycle(tours: torch.Tensor) -> torch.Tensor:
    """Rotate each tour to start at city 0 and orient it so its second city is the smaller neighbour of 0."""
    start = tours.argmin(dim=1, keepdim=True)  # position of city 0
    n = tours.shape[1]
    rolled = tours.gather(1, (start + torch.arange(n)) % n)
    backwards = torch.cat([rolled[:, :1], rolled[:, 1:].flip(1)], dim=1)
    return torch.where((rolled[:, 1] > rolled[:, -1]).unsqueeze(1), backwards, rolled)
