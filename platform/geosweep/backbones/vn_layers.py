"""Vector Neuron layers (Deng et al., ICCV 2021): features are lists of vectors that turn with the input.

A feature tensor is (..., d, C): C vector channels of d components each, after any leading axes
(batch, points, neighbours); channels last, so a VN linear map is an ordinary one. Every layer here
commutes with any orthogonal Q acting on the component axis, f(Q x) = Q f(x), reflections included:
linear maps mix channels only, never components, and the nonlinearity, batch norm and pooling
decide by dot products and norms, which Q keeps.
Only `edge_features(..., cross=True)` is narrower: a cross product turns with rotations but flips
sign under reflections. `VNInvariant` is where equivariant features become invariant scalars.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from geosweep.backbones.dgcnn import knn
from geosweep.backbones.layers import PointwiseBatchNorm

EPS = 1e-6  # keeps a vector's length, and the gradient of it, finite at the zero vector

Pooling = Literal["mean", "max"]


class VNLinear(nn.Linear):
    """A linear map of the channels, the same for every component: (..., d, C) -> (..., d, out_channels).

    No bias: a bias vector would fix a direction in space.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, bias=False)


def length(x: torch.Tensor) -> torch.Tensor:
    """(..., d, C) -> (..., C): each vector's norm, smoothed by EPS at zero."""
    return (x.square().sum(-2) + EPS**2).sqrt()


class VNBatchNorm(nn.Module):
    """Batch norm of each channel's norm; the vector keeps its direction (norms are what a rotation leaves alone)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = PointwiseBatchNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d, C) -> (..., d, C), normalised per channel over all leading axes."""
        norm = length(x)
        return x * (self.norm(norm) / norm).unsqueeze(-2)


def vn_leaky_relu(x: torch.Tensor, direction: torch.Tensor, negative_slope: float) -> torch.Tensor:
    """Each vector is kept where it points along its learned direction, else loses its component along it.

    Args:
        x: (..., d, C) features.
        direction: (..., d, C) or (..., d, 1) directions, equivariant functions of the input.
        negative_slope: the share of x kept unchanged everywhere (0: VN-ReLU).
    """
    # slope * x + (1 - slope) * (x, or x minus its component along the direction where dot < 0), in one pass:
    # the coefficient is per channel, so only two operations touch every component.
    dot = (x * direction).sum(-2, keepdim=True)
    coefficient = (1 - negative_slope) * dot.clamp(max=0) / (direction.square().sum(-2, keepdim=True) + EPS)
    return x - coefficient * direction


class VNLinearLeakyReLU(nn.Module):
    """VN linear -> VN batch norm -> VN-LeakyReLU, its directions read from the block's input as in Deng et al.

    Args:
        in_channels: C of the input.
        out_channels: C of the output.
        negative_slope: 0.2 in VN-DGCNN, 0 (VN-ReLU) in VN-PointNet.
        shared_direction: one direction for all output channels (Deng et al.'s last DGCNN layer).
    """

    def __init__(
        self, in_channels: int, out_channels: int, negative_slope: float = 0.2, shared_direction: bool = False
    ) -> None:
        super().__init__()
        self.linear = VNLinear(in_channels, out_channels)
        self.norm = VNBatchNorm(out_channels)
        self.direction = VNLinear(in_channels, 1 if shared_direction else out_channels)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d, C) -> (..., d, out_channels)."""
        return vn_leaky_relu(self.norm(self.linear(x)), self.direction(x), self.negative_slope)


class VNMaxPool(nn.Module):
    """Over axis -3 (neighbours or points), per channel, the vector with the largest dot product with a direction.

    The directions are a fixed random VN linear map of the features. Deng et al. declare it a parameter,
    but the argmax passes it no gradient, so it never leaves its initialisation; a buffer says so and keeps
    DDP from stopping on a parameter that gets no gradient.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(channels)  # nn.Linear's initialisation
        self.register_buffer("direction", torch.empty(channels, channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., K, d, C) -> (..., d, C)."""
        best = (x * (x @ self.direction.T)).sum(-2).argmax(dim=-2, keepdim=True)  # (..., 1, C)
        return torch.take_along_dim(x, best.unsqueeze(-2), dim=-3).squeeze(-3)


class VNMeanPool(nn.Module):
    """The mean over axis -3 (neighbours or points), Deng et al.'s default: a mean of vectors turns with them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., K, d, C) -> (..., d, C)."""
        return x.mean(dim=-3)


def vn_pool(pooling: Pooling, channels: int) -> nn.Module:
    """The pooling over neighbours Deng et al. offer: "mean" (their default) or "max"."""
    return VNMaxPool(channels) if pooling == "max" else VNMeanPool()


def edge_features(x: torch.Tensor, k: int, cross: bool = False) -> torch.Tensor:
    """Each point's edges to its k nearest points in feature space: [x_j - x_i, x_i] (and x_j x x_i).

    Distances between whole feature lists are rotation and reflection invariant, so the graph is too.

    Args:
        x: (B, N, d, C) features.
        k: neighbours per point, itself included; capped at N.
        cross: append the cross product (d = 3 only): it turns with rotations but flips sign under
            reflections, so it tells mirror images apart.

    Returns:
        (B, N, k, d, 2C or 3C).
    """
    batch = torch.arange(x.shape[0], device=x.device).view(-1, 1, 1)
    neighbours = x[batch, knn(x.flatten(2), k)]  # (B, N, k, d, C)
    centre = x.unsqueeze(2).expand_as(neighbours)
    parts = [neighbours - centre, centre]
    if cross:
        parts.append(torch.linalg.cross(neighbours, centre, dim=-2))
    return torch.cat(parts, dim=-1)


class VNEdgeConv(nn.Module):
    """Edge features -> VN linear, batch norm, LeakyReLU -> pooled over neighbours: (B, N, d, C) -> (B, N, d, O)."""

    def __init__(
        self, in_channels: int, out_channels: int, k: int, pooling: Pooling, negative_slope: float, cross: bool = False
    ) -> None:
        super().__init__()
        self.k, self.cross = k, cross
        self.block = VNLinearLeakyReLU((3 if cross else 2) * in_channels, out_channels, negative_slope)
        self.pool = vn_pool(pooling, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d, C) -> (B, N, d, out_channels)."""
        return self.pool(self.block(edge_features(x, self.k, self.cross)))


class VNInvariant(nn.Module):
    """Equivariant features -> invariant ones: each point's features read in a frame it predicts itself.

    Two VN blocks and a VN linear map predict `frame_size` vectors Z (..., d, frame_size) from x;
    x^T Z is invariant because (Q x)^T (Q Z) = x^T Z for every orthogonal Q (Deng et al.'s
    VNStdFeature without its optional Gram-Schmidt, which would add a cross product).

    Args:
        channels: C of the input (at least 4: the blocks halve it twice).
        frame_size: how many frame vectors (Deng et al.: 3, the dimension d).
        negative_slope: of the VN-LeakyReLUs.
    """

    def __init__(self, channels: int, frame_size: int, negative_slope: float) -> None:
        super().__init__()
        half, quarter = max(channels // 2, 1), max(channels // 4, 1)
        self.frame = nn.Sequential(
            VNLinearLeakyReLU(channels, half, negative_slope),
            VNLinearLeakyReLU(half, quarter, negative_slope),
            VNLinear(quarter, frame_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d, C) -> (..., C, frame_size) invariant features."""
        return x.mT @ self.frame(x)
