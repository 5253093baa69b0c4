"""Point-cloud classification: cross-entropy and accuracy."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch.nn import functional as F

from geosweep.registry import TASKS


class Classification:
    kind = "classification"  # the Training that runs it (train/loop.py)

    def __init__(self, label_smoothing: float) -> None:
        self.label_smoothing = label_smoothing

    def output_dim(self, num_classes: int) -> int:
        return num_classes

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float | None = None) -> torch.Tensor:
        """Cross-entropy; `label_smoothing` overrides the configured value (an amortised hyperparameter)."""
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)

    def num_correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(dim=-1) == labels).sum()


@TASKS.register("classification")
def classification(label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0) -> Classification:
    """Cross-entropy classification scored by accuracy.

    Args:
        label_smoothing: cross-entropy label smoothing in [0, 1).
    """
    return Classification(label_smoothing)
