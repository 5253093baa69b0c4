"""Learned canonicalization (Kaba et al., ICML 2023): an equivariant network predicts each cloud's frame.

A small Vector Neuron network maps the centred cloud to two vectors that turn with it; Gram-Schmidt
makes them a rotation R(x) with R(x Q^T) = Q R(x) for every rotation Q, and the cloud is read in
that frame: (x - mean) R(x), which is then invariant by construction. The network trains end to end
with whatever backbone runs on the canonical cloud.
"""

from __future__ import annotations

import itertools
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from geosweep.backbones.vn_layers import Pooling, VNEdgeConv, VNLinear, VNLinearLeakyReLU
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import Representation

# Below this fraction of its reference length a vector has no direction: the network's float32 round-off
# (about 1e-7) of a vector that is exactly zero or parallel to another in exact arithmetic.
_NO_DIRECTION = 1e-5


@REPRESENTATIONS.register("learned_canon")
class LearnedCanonicalization(Representation):
    """Centred coordinates in a frame a Vector Neuron network predicts per cloud; one frame.

    Invariant under translations, rotations and permutations (SO(d)); not under reflections:
    the third axis is the cross product of the first two (in 2-D the second is the first turned
    by 90 degrees), so a mirror image comes out mirrored, and a model on it can tell chiral
    shapes from their mirror images. Its parameters train with the backbone, so its frames are
    computed in the model at every step and never cached.

    Where a predicted vector has no direction a fixed axis stands in: finite, never NaN, but
    not equivariant. A collinear cloud's second vector (the output does not depend on it) and
    a cloud whose points coincide (all zeros) lose nothing. A cloud with a rotational symmetry
    (a line symmetric about its centre) does: every equivariant vector is fixed by that rotation,
    so the two come out parallel or zero, and no frame can be canonical there.

    Args:
        widths: vector channels of the network's VN EdgeConv layer, then of each shared per-point layer.
        k: neighbours per point of the EdgeConv layer; capped at N.
        pooling: over the neighbours, "mean" or "max" (VN max-pool).
    """

    invariances = frozenset({"translation", "rotation", "permutation"})
    deterministic = False

    def __init__(
        self,
        widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)] = (16, 16),
        k: Annotated[int, Field(ge=1)] = 10,
        pooling: Pooling = "mean",
    ) -> None:
        super().__init__()
        self.edge_conv = VNEdgeConv(1, widths[0], k, pooling, negative_slope=0.2)
        self.point_layers = nn.Sequential(
            *(VNLinearLeakyReLU(c_in, c_out) for c_in, c_out in itertools.pairwise(widths))
        )
        self.vectors = VNLinear(widths[-1], 2)

    def forward(self, points: Tensor) -> Tensor:
        """Centre each cloud and rotate it into its predicted frame.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) canonical coordinates, same dtype as `points`.
        """
        centred = points - points.mean(dim=1, keepdim=True)
        features = self.point_layers(self.edge_conv(centred.to(self.vectors.weight).unsqueeze(-1)))  # (B, N, d, C)
        frame = rotation_from(self.vectors(features.mean(dim=1)).mT.double())  # float64: orthonormal to round-off
        return (centred.double() @ frame).to(points.dtype).unsqueeze(1)


def rotation_from(vectors: Tensor) -> Tensor:
    """Gram-Schmidt: two vectors per sample -> a rotation whose columns turn with them.

    Args:
        vectors: (B, 2, d) with d in {2, 3}; in 2-D only the first is used.

    Returns:
        (B, d, d) rotation matrices (det +1), columns u_1 = v_1 / |v_1|, u_2 = v_2's part orthogonal
        to u_1 normalised (2-D: u_1 turned by 90 degrees), u_3 = u_1 x u_2.
    """
    first, second = vectors.unbind(dim=1)
    eye = torch.eye(vectors.shape[-1], dtype=vectors.dtype, device=vectors.device)
    u1 = _unit(first, first.norm(dim=-1).maximum(second.norm(dim=-1)), fallback=eye[0].expand_as(first))
    if vectors.shape[-1] == 2:
        return torch.stack([u1, torch.stack([-u1[:, 1], u1[:, 0]], dim=-1)], dim=-1)
    u2 = _unit(second - (second * u1).sum(-1, keepdim=True) * u1, second.norm(dim=-1), fallback=_orthogonal_to(u1))
    return torch.stack([u1, u2, torch.linalg.cross(u1, u2, dim=-1)], dim=-1)


def _unit(v: Tensor, reference: Tensor, fallback: Tensor) -> Tensor:
    """(B, d) vectors normalised; `fallback` where a vector is below `_NO_DIRECTION` x its (B,) reference length."""
    square = v.square().sum(-1, keepdim=True)
    has_direction = square > (_NO_DIRECTION * reference.unsqueeze(-1)).square()
    # Dividing by 1 where there is no direction keeps 0 / 0 out of both the value and its gradient.
    return torch.where(has_direction, v / torch.where(has_direction, square, 1.0).sqrt(), fallback)


def _orthogonal_to(u: Tensor) -> Tensor:
    """(B, 3) unit vectors orthogonal to the unit vectors `u`: the basis vector least along u, made orthogonal."""
    axis = torch.nn.functional.one_hot(u.abs().argmin(dim=-1), u.shape[-1]).to(u)
    w = axis - (axis * u).sum(-1, keepdim=True) * u  # |w|^2 = 1 - u_i^2 >= 2/3
    return w / w.norm(dim=-1, keepdim=True)
