"""PointNet (Qi et al., 2017) without the input transform nets: invariance is the representation's job."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.layers import mlp
from geosweep.registry import BACKBONES


@BACKBONES.register("pointnet", kind="classification")
class PointNet(nn.Module):
    """PointNet: shared per-point MLP, max pool over points, MLP head; (B, N, C) -> (B, out_dim).

    Args:
        in_channels: channels per point of the representation (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        point_widths: widths of the shared per-point layers (the last is the global feature size).
        head_widths: hidden widths of the classifier head.
        dropout: dropout between head layers.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        point_widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (64, 128, 1024),
        head_widths: tuple[PositiveInt, ...] = (512, 256),
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3,
    ) -> None:
        super().__init__()
        self.point_mlp = mlp([in_channels, *point_widths])
        self.head = mlp([point_widths[-1], *head_widths, out_dim], dropout=dropout, final_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point features -> (B, out_dim)."""
        return self.head(self.point_mlp(x).amax(dim=1))
