"""Building blocks shared by the backbones."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn


def mlp(
    sizes: list[int],
    dropout: float = 0.0,
    final_activation: bool = True,
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Linear layers with batch norm + activation between them; acts on the last axis.

    Args:
        sizes: input width followed by each layer's output width.
        dropout: dropout after every activation except the last layer's.
        final_activation: whether the last layer also gets batch norm + activation.
        activation: zero-argument factory of the nonlinearity (DGCNN uses LeakyReLU(0.2)).
    """
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(fan_in, fan_out))
        if not last or final_activation:
            layers += [PointwiseBatchNorm(fan_out), activation()]
            if dropout and not last:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class PointwiseBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channel (last) axis of (..., C) tensors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C), normalised per channel over all leading axes."""
        flat = x.reshape(-1, x.shape[-1])
        return super().forward(flat).reshape(x.shape)
