"""DGCNN (Wang et al., 2019): EdgeConv on a kNN graph rebuilt in feature space at every layer."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.layers import PointwiseBatchNorm, mlp
from geosweep.registry import BACKBONES

leaky_relu = partial(nn.LeakyReLU, 0.2)  # the paper's nonlinearity throughout


def knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of each point's k nearest points in feature space, itself included."""
    # Plain torch ops (no compiled extension); the N x N distance matrix is fine at ModelNet's N = 1024.
    return torch.cdist(x, x).topk(min(k, x.shape[1]), dim=-1, largest=False).indices


class EdgeConv(nn.Module):
    """h(x_i, x_j) = LeakyReLU(BN(W [x_i, x_j - x_i])), max over the k neighbours j of i."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.linear = nn.Linear(2 * in_channels, out_channels, bias=False)  # BN follows, so no bias
        self.norm = PointwiseBatchNorm(out_channels)
        self.act = leaky_relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N, out_channels)."""
        batch, num_points, _ = x.shape
        idx = knn(x, self.k)  # (B, N, k)
        # W [x_i, x_j - x_i] = (W_a - W_b) x_i + W_b x_j: apply the weights per point, then gather,
        # instead of materialising (B, N, k, 2C) edge features and multiplying each.
        w_a, w_b = self.linear.weight.chunk(2, dim=1)
        centre = x @ (w_a - w_b).T  # (B, N, O)
        neighbour = (x @ w_b.T).flatten(0, 1)  # (B * N, O)
        offset = torch.arange(batch, device=x.device).view(batch, 1, 1) * num_points
        edges = centre.unsqueeze(2) + neighbour[idx + offset]  # (B, N, k, O)
        return self.act(self.norm(edges)).amax(dim=2)


@BACKBONES.register("dgcnn", kind="classification")
class DGCNN(nn.Module):
    """DGCNN: EdgeConv layers, concatenated -> per-point embedding -> max + mean pool -> MLP head.

    The paper's classification sizes are the defaults; a tiny CI size is e.g.
    `widths=(8, 8), k=4, emb_dims=16, head_widths=(16,)`.

    Args:
        in_channels: channels per point of the representation (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        widths: output width of each EdgeConv layer (one layer each).
        k: neighbours per point, recomputed in feature space at each layer; capped at N.
        emb_dims: width of the per-point embedding that is pooled.
        head_widths: hidden widths of the classifier head.
        dropout: dropout between head layers.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (64, 64, 128, 256),
        k: Annotated[int, Field(ge=1)] = 20,
        emb_dims: Annotated[int, Field(ge=1)] = 1024,
        head_widths: tuple[PositiveInt, ...] = (512, 256),
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5,
    ) -> None:
        super().__init__()
        sizes = [in_channels, *widths]
        self.edge_convs = nn.ModuleList(EdgeConv(c_in, c_out, k) for c_in, c_out in itertools.pairwise(sizes))
        self.embed = nn.Sequential(
            nn.Linear(sum(widths), emb_dims, bias=False), PointwiseBatchNorm(emb_dims), leaky_relu()
        )
        self.head = mlp([2 * emb_dims, *head_widths, out_dim], dropout, final_activation=False, activation=leaky_relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point features -> (B, out_dim)."""
        features = []
        for conv in self.edge_convs:
            x = conv(x)
            features.append(x)
        points = self.embed(torch.cat(features, dim=-1))  # (B, N, emb_dims)
        return self.head(torch.cat([points.amax(dim=1), points.mean(dim=1)], dim=-1))
