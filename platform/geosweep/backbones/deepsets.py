"""Deep Sets (Zaheer et al., 2017): f(X) = rho(pool_i phi(x_i))."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.layers import mlp
from geosweep.registry import BACKBONES

Pool = Literal["sum", "mean", "max"]


@BACKBONES.register("deepsets", kind="classification")
class DeepSets(nn.Module):
    """Deep Sets: per-point MLP phi, a symmetric pool, MLP head rho.

    Widths follow the paper's point-cloud model (three 256-wide layers, dropout
    0.5). The default pool is the sum of the paper's theorem; its ModelNet
    experiment used "max". A tiny CI size is e.g. `point_widths=(8,), head_widths=(8,)`.

    Args:
        in_channels: channels per point of the representation (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        point_widths: widths of phi's layers (the last is the pooled feature size).
        head_widths: hidden widths of rho.
        pool: symmetric pooling over points.
        dropout: dropout between rho's layers.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        point_widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (256, 256, 256),
        head_widths: tuple[PositiveInt, ...] = (256,),
        pool: Pool = "sum",
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.point_mlp = mlp([in_channels, *point_widths])
        self.head = mlp([point_widths[-1], *head_widths, out_dim], dropout=dropout, final_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point features -> (B, out_dim)."""
        points = self.point_mlp(x)
        if self.pool == "sum":
            pooled = points.sum(dim=1)
        elif self.pool == "mean":
            pooled = points.mean(dim=1)
        else:
            pooled = points.amax(dim=1)
        return self.head(pooled)
