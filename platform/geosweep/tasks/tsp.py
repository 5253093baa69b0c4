"""The travelling salesman problem: tours scored by length, trained by REINFORCE (Kool et al., ICLR 2019).

Each rank samples its own fresh instances every step (DDP averages the
gradients); validation is sharded over ranks; the test gaps on transformed
copies are rank 0's, at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from geosweep import random_streams
from geosweep.data.tours import tour_length
from geosweep.data.tsp import TSPData, transformed_variants
from geosweep.model import TourModel, build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tasks.base import Batch
from geosweep.tasks.baselines import ExponentialBaseline, RolloutBaseline, WarmupBaseline
from geosweep.tasks.evaluation import all_reduce_sum, ambiguity_fractions

if TYPE_CHECKING:
    from geosweep.config import RunConfig


@TASKS.register("tsp", kind="tour")
class TSP:
    """TSP tours trained by REINFORCE and scored by optimality gap.

    Args:
        baseline: `rollout`: the greedy tour of a frozen copy of the policy, replaced when a
            one-sided paired t-test on `baseline_eval_size` held-out instances says the policy
            is better; `exponential`: a moving average of the batch's mean tour length.
        warmup_epochs: with `rollout`, epochs of the exponential baseline (`ema_beta`) before the
            rollout takes over, blended linearly (Kool et al.: 1 epoch, beta 0.8); 0: the rollout from
            the first step, against the untrained policy's greedy tours.
        epoch_size: training instances per epoch, over all workers (fresh instances every epoch).
        baseline_eval_size: held-out instances of the rollout baseline's t-test.
        t_test_alpha: significance level of that test.
        ema_beta: decay of the exponential baseline (and of the rollout's warm-up).
        grad_clip: gradient-norm clipping (Kool et al. use 1.0).
    """

    epoch_metrics = ("val_tour_len", "val_gap", "train_tour_len")  # evaluate()'s keys, and loss()'s tour_len

    def __init__(
        self,
        baseline: Literal["rollout", "exponential"] = "rollout",
        warmup_epochs: Annotated[int, Field(ge=0)] = 1,
        epoch_size: Annotated[int, Field(ge=1)] = 12_800,
        baseline_eval_size: Annotated[int, Field(ge=2)] = 1_000,
        t_test_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05,
        ema_beta: Annotated[float, Field(ge=0, lt=1)] = 0.8,
        grad_clip: Annotated[float, Field(gt=0)] = 1.0,
    ) -> None:
        self.baseline_name, self.epoch_size, self.baseline_eval_size = baseline, epoch_size, baseline_eval_size
        self.warmup_epochs = warmup_epochs
        self.t_test_alpha, self.ema_beta, self.grad_clip = t_test_alpha, ema_beta, grad_clip

    @staticmethod
    def reinforce(lengths: torch.Tensor, baseline: torch.Tensor, log_likelihood: torch.Tensor) -> torch.Tensor:
        """REINFORCE with a baseline: lowers the likelihood of tours longer than the baseline's."""
        return ((lengths - baseline).detach() * log_likelihood).mean()

    @staticmethod
    def gap_percent(lengths: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-instance optimality gap in % against the reference (LKH) tour length."""
        return 100.0 * (lengths / reference - 1.0)

    # --- training recipe (see tasks/base.py's Task)

    def setup(self, config: RunConfig, rank: int, world_size: int, device: torch.device) -> TourModel:
        """The fixed val/test sets (the same on every rank), the policy and the baseline."""
        self.config, self.rank, self.world_size, self.device = config, rank, world_size, device
        self.data: TSPData = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
        self.model: TourModel = build_model(config, dim=2)
        if self.baseline_name == "rollout":
            self.baseline = RolloutBaseline(
                self.model, self.data.sample_train, self.baseline_eval_size, self.t_test_alpha, config.seed
            )
            if self.warmup_epochs:
                self.baseline = WarmupBaseline(self.baseline, self.ema_beta, self.warmup_epochs)
        else:
            self.baseline = ExponentialBaseline(self.ema_beta)
        self.steps_per_epoch = max(1, self.epoch_size // (config.batch_size * world_size))
        return self.model

    def start_metrics(self) -> dict[str, float]:
        """Step 0 (rank 0): the untrained model's and random tours' validation gaps, the floor training must beat."""
        val = self.data.val
        cities = torch.from_numpy(val.coords)
        untrained = tour_length(cities, self.model.greedy_tours(cities)).double()
        rng = random_streams.generator("tsp.random_tours", self.config.seed)
        random_tours = torch.from_numpy(rng.permuted(np.tile(np.arange(self.data.num_nodes), (len(cities), 1)), axis=1))
        random = tour_length(cities, random_tours).double()
        return ambiguity_fractions([val.coords, self.data.test.coords], self.model.representation) | {
            "val_tour_len": untrained.mean().item(),
            "val_gap": self.gap_or_nan(untrained, val.ref_lengths).mean().item(),
            "val_gap/random_tour": self.gap_or_nan(random, val.ref_lengths).mean().item(),
        }

    def batches(self, epoch: int) -> Iterator[Batch]:
        """`steps_per_epoch` batches of fresh instances (this rank's stream for this epoch), tours sampled."""
        rng = random_streams.generator("tsp.train", self.config.seed, self.rank, epoch)
        for _ in range(self.steps_per_epoch):
            cities = torch.from_numpy(self.data.sample_train(rng, self.config.batch_size)).to(self.device)
            yield Batch({"cities": cities, "decode": "sample"}, targets=cities)

    def loss(
        self, outputs: tuple[torch.Tensor, torch.Tensor], cities: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """REINFORCE against the baseline's lengths of the same instances.

        Returns:
            The loss, and the batch's mean tour length (`tour_len`).
        """
        tours, log_likelihood = outputs
        lengths = tour_length(cities, tours)  # also checks that every tour is a permutation
        loss = self.reinforce(lengths, self.baseline(cities, lengths), log_likelihood.float())
        return loss, {"tour_len": lengths.mean()}

    def end_epoch(self) -> dict[str, float]:
        """The baseline's end-of-epoch update (the rollout's t-test, decided on rank 0 and broadcast)."""
        return self.baseline.epoch_end(self.model)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Greedy tours on the fixed validation set (each rank a shard): mean length and gap to the reference."""
        val = self.data.val
        shard = slice(self.rank, None, self.world_size)
        cities = torch.from_numpy(val.coords[shard])
        lengths = tour_length(cities, self.model.greedy_tours(cities)).double()
        gaps = self.gap_or_nan(lengths, val.ref_lengths, shard)
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
        metrics = {"test_gap/original": self.gap_or_nan(original, test.ref_lengths).mean().item()}
        max_rel_diff, agreements = 0.0, []
        for name, (coords, scale) in transformed_variants(test.coords, seed=self.config.seed).items():
            variant = torch.from_numpy(coords)
            tours = self.model.greedy_tours(variant)
            lengths = tour_length(variant, tours).double()
            references = None if test.ref_lengths is None else test.ref_lengths * scale
            metrics[f"test_gap/{name}"] = self.gap_or_nan(lengths, references).mean().item()
            max_rel_diff = max(max_rel_diff, ((lengths / scale - original).abs() / original).max().item())
            agreements.append(same_tours(tours, original_tours))
        metrics["invariance/tour_len_max_rel_diff"] = max_rel_diff
        metrics["invariance/tour_agreement"] = torch.cat(agreements).double().mean().item()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """The baseline's state (the rollout's frozen policy and version, the moving average, the warm-up)."""
        return {"baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the baseline."""
        self.baseline.load_state_dict(state["baseline"])

    def example_inputs(self, count: int) -> dict[str, torch.Tensor]:
        """The first `count` test instances' cities."""
        return {"cities": torch.from_numpy(self.data.test.coords[:count])}

    def gap_or_nan(
        self, lengths: torch.Tensor, references: np.ndarray | None, rows: slice = slice(None)
    ) -> torch.Tensor:
        """Per-instance gaps in %; NaN where the set carries no reference tours (reference: none)."""
        if references is None:
            return torch.full_like(lengths, float("nan"))
        return self.gap_percent(lengths, torch.from_numpy(np.asarray(references)[rows]).to(lengths))


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
