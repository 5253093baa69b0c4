"""The interface every representation on the representation axis implements."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

SYMMETRIES = frozenset({"translation", "rotation", "reflection", "permutation", "scale"})


class Representation(torch.nn.Module):
    """Maps a batch of point clouds to one or more invariant 'frames' of per-point features.

    `invariances` is a subset of `SYMMETRIES`: "rotation" means SO(d), "rotation" with
    "reflection" means O(d), and "permutation" means permutation-EQUIVARIANT per point
    (permuting the input points permutes the output rows the same way).
    """

    invariances: ClassVar[frozenset[str]]

    def out_channels(self, dim: int) -> int:
        """Number of per-point feature channels c for d-dimensional input.

        Args:
            dim: spatial dimension d of the input points.

        Returns:
            c, the size of the last output axis.
        """
        raise NotImplementedError

    def forward(self, points: Tensor) -> Tensor:
        """Compute the frames.

        Args:
            points: (B, N, d) batch of point clouds.

        Returns:
            (B, F, N, c) per-point features for each of the F frames.
        """
        raise NotImplementedError


def check_points(points: Tensor) -> None:
    """Reject input that is not a (B, N, d) batch with d in {2, 3}.

    Args:
        points: the tensor passed to `Representation.forward`.

    Raises:
        ValueError: on a wrong rank or dimension.
    """
    if points.ndim != 3 or points.shape[-1] not in (2, 3):
        raise ValueError(
            f"expected points of shape (B, N, d) with d in (2, 3), got {tuple(points.shape)}"
        )
