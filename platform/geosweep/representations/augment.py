"""Raw coordinates with random rotations in training: the augmentation baseline."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import Representation


def random_rotations(batch: int, dim: int, group: Literal["z", "so3"], like: Tensor) -> Tensor:
    """Draw one Haar-uniform rotation per sample.

    Args:
        batch: number of rotations B.
        dim: 2 or 3.
        group: "z" (about the last axis, as the data's "z" protocol) or "so3"; in
            2-D both mean SO(2), the plane's only rotation group.
        like: tensor whose dtype and device the rotations take.

    Returns:
        (B, dim, dim) rotation matrices (det +1).
    """
    kw = {"dtype": like.dtype, "device": like.device}
    if dim == 2 or group == "z":
        angle = torch.rand(batch, **kw) * (2.0 * math.pi)
        cos, sin = angle.cos(), angle.sin()
        rot = torch.eye(dim, **kw).repeat(batch, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = cos, -sin, sin, cos
        return rot
    # QR of a Gaussian matrix with R's diagonal made positive is Haar on O(3)
    # (Mezzadri 2007); flipping a column where det = -1 maps it onto Haar SO(3).
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, **kw))
    q = q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(1)
    q[:, :, 0] *= torch.linalg.det(q).sign().unsqueeze(-1)
    return q


@REPRESENTATIONS.register("raw_aug")
class RawAugmented(Representation):
    """Raw coordinates (`raw`), each cloud randomly rotated about its centroid in training mode only; one frame.

    Eval mode returns what `raw` with the same `centre` does, so the model sees the
    test pose. Augmentation teaches approximate invariance but guarantees none, hence
    only permutation, and translation when centred, are declared.

    For point clouds, `raw` under `dataset.rotation.train: so3` sees the same distribution (a fresh
    rotation per cloud every epoch); raw_aug stays as the representation axis's name for the
    augmentation baseline, so one sweep over representations compares it with the invariant ones,
    and it is the only rotation augmentation TSP has (TSP instances have no rotation protocol).

    Args:
        group: "so3" for Haar-uniform 3-D rotations, "z" for rotations about the
            last (vertical) axis; for d = 2 both draw uniform SO(2) rotations.
        centre: subtract each cloud's centroid; False keeps every cloud where it
            is (a TSP instance turns in place, as in the test set's rotated copy).
    """

    invariances = frozenset({"translation", "permutation"})
    equivariances = frozenset({"rotation", "reflection"})  # in eval mode, where it is plain `raw`
    deterministic = False

    def __init__(self, group: Literal["z", "so3"] = "so3", centre: bool = True) -> None:
        super().__init__()
        self.group, self.centre = group, centre
        if not centre:
            self.invariances = frozenset({"permutation"})

    def forward(self, points: Tensor) -> Tensor:
        """Centre (if `centre`), and in training mode rotate, each cloud.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) coordinates, same dtype as `points`.
        """
        centroid = points.mean(dim=1, keepdim=True)
        centred = points - centroid
        if not self.training:
            return (centred if self.centre else points).unsqueeze(1)
        rotated = centred @ random_rotations(points.shape[0], points.shape[-1], self.group, points).mT
        return (rotated if self.centre else rotated + centroid).unsqueeze(1)
