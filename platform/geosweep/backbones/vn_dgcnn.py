"""VN-DGCNN (Deng et al., 2021): DGCNN's EdgeConv built from Vector Neurons, rotation invariant by construction."""

from __future__ import annotations

import itertools
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.dgcnn import leaky_relu
from geosweep.backbones.layers import mlp
from geosweep.backbones.vn_layers import Pooling, VNEdgeConv, VNInvariant, VNLinearLeakyReLU
from geosweep.registry import BACKBONES

NEGATIVE_SLOPE = 0.2  # DGCNN's, in the vector layers as in the scalar head


@BACKBONES.register("vn_dgcnn", kind="classification")
class VNDGCNN(nn.Module):
    """VN EdgeConv layers, concatenated -> VN embedding -> invariant features -> max + mean pool -> MLP head.

    Each point's C input channels are one C-dimensional vector (raw coordinates: d = 3). The output
    is invariant under every orthogonal map of that vector, reflections included (no cross product
    anywhere), so it cannot tell a shape from its mirror image. It is NOT translation invariant: the
    edges' x_i is a position, so the input must be centred (every representation centres).

    Deng et al.'s sizes, their channels divided by 3 (one vector holds 3 numbers), are the defaults; a
    tiny CI size is e.g. `widths=(4, 4), k=4, emb_dims=8, head_widths=(8,)`.

    Args:
        in_channels: the vector dimension of each point (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        widths: vector channels of each VN EdgeConv layer.
        k: neighbours per point, recomputed in feature space at each layer; capped at N.
        emb_dims: vector channels of the per-point embedding.
        head_widths: hidden widths of the classifier head.
        dropout: dropout between head layers.
        pooling: over each point's neighbours, "mean" (Deng et al.'s default) or "max" (VN max-pool).
    """

    invariances = frozenset({"rotation", "reflection"})

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (21, 21, 42, 85),
        k: Annotated[int, Field(ge=1)] = 20,
        emb_dims: Annotated[int, Field(ge=4)] = 341,
        head_widths: tuple[PositiveInt, ...] = (512, 256),
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5,
        pooling: Pooling = "mean",
    ) -> None:
        super().__init__()
        sizes = [1, *widths]
        self.edge_convs = nn.ModuleList(
            VNEdgeConv(c_in, c_out, k, pooling, NEGATIVE_SLOPE) for c_in, c_out in itertools.pairwise(sizes)
        )
        self.embed = VNLinearLeakyReLU(sum(widths), emb_dims, NEGATIVE_SLOPE, shared_direction=True)
        # Each point's embedding and the cloud's mean embedding, read in a frame of in_channels vectors.
        self.invariant = VNInvariant(2 * emb_dims, in_channels, NEGATIVE_SLOPE)
        head_in = 2 * (2 * emb_dims * in_channels)  # max and mean over points
        self.head = mlp([head_in, *head_widths, out_dim], dropout, final_activation=False, activation=leaky_relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point vectors -> (B, out_dim)."""
        x = x.unsqueeze(-1)  # (B, N, C, 1): each point one C-vector
        features = []
        for conv in self.edge_convs:
            x = conv(x)
            features.append(x)
        points = self.embed(torch.cat(features, dim=-1))  # (B, N, C, E)
        points = torch.cat([points, points.mean(dim=1, keepdim=True).expand_as(points)], dim=-1)
        scalars = self.invariant(points).flatten(2)  # (B, N, 2E * C)
        return self.head(torch.cat([scalars.amax(dim=1), scalars.mean(dim=1)], dim=-1))
