"""VN-PointNet (Deng et al., 2021): PointNet built from Vector Neurons, rotation invariant by construction."""

from __future__ import annotations

import itertools
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.layers import mlp
from geosweep.backbones.vn_layers import (
    Pooling,
    VNBatchNorm,
    VNEdgeConv,
    VNInvariant,
    VNLinear,
    VNLinearLeakyReLU,
)
from geosweep.registry import BACKBONES

NEGATIVE_SLOPE = 0.0  # VN-ReLU, as PointNet's ReLU


@BACKBONES.register("vn_pointnet", kind="classification")
class VNPointNet(nn.Module):
    """One VN EdgeConv on the input, shared VN layers per point, invariant features, max pool, MLP head.

    Each point's C input channels are one C-dimensional vector. As in Deng et al., the first layer
    sees each point's k nearest neighbours through [x_j - x_i, x_i, x_j x x_i]; the cross product
    turns with rotations but flips sign under reflections, so for C = 3 the output is invariant under
    rotations only (SO(3)) and can tell mirror images apart. Other C have no cross product and the
    output is invariant under all orthogonal maps (O(C)). Not translation invariant: the input must be
    centred (every representation centres). Deng et al.'s feature transform net is left out.

    Deng et al.'s sizes, their channels divided by 3, are the defaults; a tiny CI size is e.g.
    `point_widths=(4, 8), k=4, emb_dims=8, head_widths=(8,)`.

    Args:
        in_channels: the vector dimension of each point (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        point_widths: vector channels of the first (EdgeConv) layer, then of each shared per-point layer.
        k: neighbours per point of the first layer; capped at N.
        emb_dims: vector channels of the per-point embedding that is made invariant and pooled.
        head_widths: hidden widths of the classifier head.
        dropout: dropout between head layers.
        pooling: over the first layer's neighbours, "mean" (Deng et al.'s default) or "max" (VN max-pool).
    """

    invariances = frozenset({"rotation"})  # the class's claim for 3-D vectors; other dimensions claim reflections too

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        point_widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (21, 21, 42),
        k: Annotated[int, Field(ge=1)] = 20,
        emb_dims: Annotated[int, Field(ge=4)] = 341,
        head_widths: tuple[PositiveInt, ...] = (512, 256),
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.4,
        pooling: Pooling = "mean",
    ) -> None:
        super().__init__()
        cross = in_channels == 3
        if not cross:
            self.invariances = frozenset({"rotation", "reflection"})
        self.edge_conv = VNEdgeConv(1, point_widths[0], k, pooling, NEGATIVE_SLOPE, cross=cross)
        self.point_layers = nn.Sequential(
            *(VNLinearLeakyReLU(c_in, c_out, NEGATIVE_SLOPE) for c_in, c_out in itertools.pairwise(point_widths))
        )
        self.embed = nn.Sequential(VNLinear(point_widths[-1], emb_dims), VNBatchNorm(emb_dims))
        # Each point's embedding and the cloud's mean embedding, read in a frame of in_channels vectors.
        self.invariant = VNInvariant(2 * emb_dims, in_channels, NEGATIVE_SLOPE)
        self.head = mlp([2 * emb_dims * in_channels, *head_widths, out_dim], dropout, final_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point vectors -> (B, out_dim)."""
        points = self.embed(self.point_layers(self.edge_conv(x.unsqueeze(-1))))  # (B, N, C, E)
        points = torch.cat([points, points.mean(dim=1, keepdim=True).expand_as(points)], dim=-1)
        return self.head(self.invariant(points).flatten(2).amax(dim=1))
