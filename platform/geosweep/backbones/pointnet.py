"""PointNet (Qi et al., 2017) without the input transform nets: invariance is the representation's job."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.registry import BACKBONES


def mlp(sizes: list[int], dropout: float = 0.0, final_activation: bool = True) -> nn.Sequential:
    """Linear layers with batch norm + ReLU between them; acts on the last axis."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(fan_in, fan_out))
        if not last or final_activation:
            layers += [PointwiseBatchNorm(fan_out), nn.ReLU()]
            if dropout and not last:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class PointwiseBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channel (last) axis of (..., C) tensors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        return super().forward(flat).reshape(x.shape)


class PointNet(nn.Module):
    def __init__(self, in_channels: int, out_dim: int, point_widths: tuple[int, ...], head_widths: tuple[int, ...], dropout: float):
        super().__init__()
        self.point_mlp = mlp([in_channels, *point_widths])
        self.head = mlp([point_widths[-1], *head_widths, out_dim], dropout=dropout, final_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point features -> (B, out_dim)."""
        return self.head(self.point_mlp(x).amax(dim=1))


@BACKBONES.register("pointnet")
def pointnet(
    in_channels: int,
    out_dim: int,
    point_widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (64, 128, 1024),
    head_widths: tuple[PositiveInt, ...] = (512, 256),
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3,
) -> PointNet:
    """PointNet: shared per-point MLP, max pool over points, MLP head.

    Args:
        point_widths: widths of the shared per-point layers (the last is the global feature size).
        head_widths: hidden widths of the classifier head.
        dropout: dropout between head layers.
    """
    return PointNet(in_channels, out_dim, point_widths, head_widths, dropout)
