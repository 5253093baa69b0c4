"""REINFORCE baselines for tour models: a greedy rollout (Kool et al.) with its warm-up, or a moving average."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist

from geosweep import random_streams
from geosweep.data.tours import tour_length
from geosweep.model import EVAL_BATCH, TourModel


class ExponentialBaseline:
    """b <- beta b + (1 - beta) mean(batch lengths); each rank keeps its own, rank 0's is checkpointed."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.value: float | None = None

    def __call__(self, cities: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The average after this batch, for every instance of it."""
        mean = lengths.mean().item()
        self.value = mean if self.value is None else self.beta * self.value + (1 - self.beta) * mean
        return torch.full_like(lengths, self.value)

    def epoch_end(self, policy: TourModel) -> dict[str, float]:
        """Nothing to decide per epoch; the current average, for MLflow."""
        return {"baseline/value": self.value if self.value is not None else float("nan")}

    def state_dict(self) -> dict:
        """The average, for checkpoints."""
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        """Restore the average."""
        self.value = state["value"]


class RolloutBaseline:
    """The greedy tour length of a frozen copy of the policy, replaced when the policy is significantly better.

    After each epoch the policy and the baseline decode the same held-out instances
    greedily; a one-sided paired t-test (policy shorter) below `alpha` makes the
    policy the new baseline and draws a new held-out set. Every rank draws the same
    set; rank 0's decision is broadcast, so ranks can never disagree.

    The test looks twice (Haybittle-Peto): first at the set's first tenth, where only
    overwhelming evidence (p < alpha / 50) replaces the baseline, then at the whole
    set, Kool et al.'s test at `alpha`. Early in training most epochs end at the
    first look, and a 10,000-instance test then decodes 1,024 of them. The frozen
    policy's lengths are decoded when a test first needs them, never for a set no
    test reaches. Both looks decode in whole EVAL_BATCHes from the set's start, so
    every length is the one a single pass over the set gives.
    """

    FIRST_LOOK_SHARE = 0.1  # of the held-out set, in whole EVAL_BATCHes
    EARLY_ALPHA_SHARE = 1 / 50  # the first look's level, as a share of alpha

    def __init__(
        self, policy: TourModel, sample: Callable[[np.random.Generator, int], np.ndarray], eval_size: int,
        alpha: float, seed: int,
    ) -> None:  # fmt: skip  # the policy and its data, then the t-test settings
        self.sample, self.eval_size, self.alpha, self.seed = sample, eval_size, alpha, seed
        self.model = copy.deepcopy(policy).eval().requires_grad_(False)
        self.version = 0
        first = EVAL_BATCH * max(1, round(self.FIRST_LOOK_SHARE * eval_size / EVAL_BATCH))
        self.looks = [first, eval_size] if 2 * first <= eval_size else [eval_size]  # a small set: one look
        self._draw_eval_set()

    def _draw_eval_set(self) -> None:
        rng = random_streams.generator("tsp.baseline_eval", self.seed, self.version)
        self.eval_cities = torch.from_numpy(self.sample(rng, self.eval_size))
        self.eval_lengths = torch.empty(0)  # the frozen policy's, as far as a test has needed them

    def _greedy_lengths(self, model: TourModel, start: int, stop: int) -> torch.Tensor:
        cities = self.eval_cities[start:stop]
        return tour_length(cities, model.greedy_tours(cities))

    def baseline_lengths(self, size: int) -> torch.Tensor:
        """The frozen policy's greedy lengths of the first `size` held-out instances, decoded once."""
        if len(self.eval_lengths) < size:
            more = self._greedy_lengths(self.model, len(self.eval_lengths), size)
            self.eval_lengths = torch.cat([self.eval_lengths, more])
        return self.eval_lengths[:size]

    @torch.no_grad()
    def __call__(self, cities: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The frozen policy's greedy tour length of each instance."""
        self.model.to(cities.device)
        return tour_length(cities, self.model(cities, decode="greedy")[0])

    def epoch_end(self, policy: TourModel) -> dict[str, float]:
        """Replace the frozen policy by `policy` if the t-test says it is better; the test's outcome, for MLflow."""
        from scipy import stats  # here: importing it costs every trial process about 0.5 s, and only TSP needs it

        candidate = torch.empty(0)
        for size in self.looks:
            candidate = torch.cat([candidate, self._greedy_lengths(policy, len(candidate), size)])
            baseline = self.baseline_lengths(size)
            improvement = (baseline - candidate).mean().item()
            p_value = float(stats.ttest_rel(candidate.numpy(), baseline.numpy(), alternative="less").pvalue)
            level = self.alpha if size == self.eval_size else self.alpha * self.EARLY_ALPHA_SHARE
            if better := improvement > 0 and p_value < level:
                break
        replace = torch.tensor([better], dtype=torch.float32)
        if dist.is_available() and dist.is_initialized():
            replace = replace.to(next(policy.parameters()).device)
            dist.broadcast(replace, src=0)
        if replace.item():
            self.model.load_state_dict(policy.state_dict())
            self.version += 1
            self._draw_eval_set()
        return {
            "baseline/p_value": p_value,
            "baseline/replaced": replace.item(),
            "baseline/version": self.version,
            "baseline/eval_instances": size,  # held-out instances the test decoded
        }

    def state_dict(self) -> dict:
        """The frozen policy and its version, for checkpoints."""
        return {"model": self.model.state_dict(), "version": self.version}

    def load_state_dict(self, state: dict) -> None:
        """Restore the frozen policy and redraw its held-out set (a function of the seed and version)."""
        self.model.load_state_dict(state["model"])
        self.version = state["version"]
        self._draw_eval_set()


class WarmupBaseline:
    """Kool et al.'s warm-up: the exponential baseline first, then the greedy rollout, blended linearly in between.

    In the epoch after `epochs_done` epochs the baseline is a * rollout + (1 - a) * exponential with
    a = min(1, epochs_done / epochs): with `epochs` = 1 (the paper's default) the first epoch uses the
    moving average alone, every later one the rollout alone. The rollout's t-test runs after every epoch,
    warm-up included, so the policy trained in the first epoch can replace the untrained frozen one.
    """

    def __init__(self, rollout: RolloutBaseline, beta: float, epochs: int) -> None:
        self.rollout, self.exponential, self.epochs = rollout, ExponentialBaseline(beta), epochs
        self.epochs_done = 0

    @property
    def rollout_weight(self) -> float:
        """a, the rollout's share of the baseline in the current epoch."""
        return min(1.0, self.epochs_done / self.epochs)

    def __call__(self, cities: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The blend for this epoch; the part with weight 0 is not computed (the rollout costs a greedy decode)."""
        weight = self.rollout_weight
        if weight == 1.0:
            return self.rollout(cities, lengths)
        average = self.exponential(cities, lengths)
        return average if weight == 0.0 else weight * self.rollout(cities, lengths) + (1 - weight) * average

    def epoch_end(self, policy: TourModel) -> dict[str, float]:
        """The rollout's t-test, and the rollout's weight in the epoch that ended, for MLflow."""
        metrics = self.rollout.epoch_end(policy) | {"baseline/rollout_weight": self.rollout_weight}
        self.epochs_done += 1
        return metrics

    def state_dict(self) -> dict:
        """Both baselines and how far the warm-up has gone, for checkpoints."""
        return {
            "rollout": self.rollout.state_dict(),
            "exponential": self.exponential.state_dict(),
            "epochs_done": self.epochs_done,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore both baselines and the warm-up's progress."""
        self.rollout.load_state_dict(state["rollout"])
        self.exponential.load_state_dict(state["exponential"])
        self.epochs_done = state["epochs_done"]
