"""The travelling salesman problem: tours scored by length, trained by REINFORCE (Kool et al., ICLR 2019)."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from geosweep.registry import TASKS


class TourTask:
    """What a tour model's outputs mean and how they are scored; the training is in train/tours.py."""

    kind = "tour"  # the Training that runs it (train/loop.py)

    def __init__(
        self, baseline: str, epoch_size: int, baseline_eval_size: int, t_test_alpha: float, ema_beta: float,
        grad_clip: float,
    ) -> None:  # fmt: skip
        self.baseline, self.epoch_size, self.baseline_eval_size = baseline, epoch_size, baseline_eval_size
        self.t_test_alpha, self.ema_beta, self.grad_clip = t_test_alpha, ema_beta, grad_clip

    @staticmethod
    def loss(lengths: torch.Tensor, baseline: torch.Tensor, log_likelihood: torch.Tensor) -> torch.Tensor:
        """REINFORCE with a baseline: lowers the likelihood of tours longer than the baseline's."""
        return ((lengths - baseline).detach() * log_likelihood).mean()

    @staticmethod
    def gap_percent(lengths: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-instance optimality gap in % against the reference (LKH) tour length."""
        return 100.0 * (lengths / reference - 1.0)


@TASKS.register("tsp")
def tsp(
    baseline: Literal["rollout", "exponential"] = "rollout",
    epoch_size: Annotated[int, Field(ge=1)] = 12_800,
    baseline_eval_size: Annotated[int, Field(ge=2)] = 1_000,
    t_test_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05,
    ema_beta: Annotated[float, Field(ge=0, lt=1)] = 0.8,
    grad_clip: Annotated[float, Field(gt=0)] = 1.0,
) -> TourTask:
    """TSP tours trained by REINFORCE and scored by optimality gap.

    Args:
        baseline: `rollout`: the greedy tour of a frozen copy of the policy, replaced when a
            one-sided paired t-test on `baseline_eval_size` held-out instances says the policy
            is better; `exponential`: a moving average of the batch's mean tour length.
        epoch_size: training instances per epoch, over all workers (fresh instances every epoch).
        baseline_eval_size: held-out instances of the rollout baseline's t-test.
        t_test_alpha: significance level of that test.
        ema_beta: decay of the exponential baseline.
        grad_clip: gradient-norm clipping (Kool et al. use 1.0).
    """
    return TourTask(baseline, epoch_size, baseline_eval_size, t_test_alpha, ema_beta, grad_clip)
