"""Frame Averaging with the PCA frame (Puny et al., ICLR 2022; METHODS.md section 2)."""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import (
    Representation,
    check_enough_points,
    pca_invariances,
    principal_axes,
    scale_divisor,
)


@REPRESENTATIONS.register("fa")
class FrameAveraging(Representation):
    """Every sign choice of the principal axes: frames R_s^T (x - t) with R_s = V diag(s).

    V holds the covariance eigenvectors (descending eigenvalues, detached) and t the
    centroid, both shared with tinv_mds. The model averages its backbone over the F
    frames, which is exactly invariant: a transformed input permutes the frame set.
    Unlike tinv_mds this is immune to sign ambiguity (all signs are present), but it
    still breaks at repeated eigenvalues. Degenerate clouds behave as in tinv_mds
    (all-equal -> zeros, null-space columns ~0, no NaN).

    Args:
        group: "o3": all 2^d sign vectors (mirror images give the same frame set);
            "so3": the 2^(d-1) sign vectors with det(V diag(s)) = +1 (proper
            rotations only, mirror images stay distinct).
        stochastic: in training mode return ONE random frame element per sample
            (F = 1, cost of one backbone pass); eval mode always returns all F.
        scale: "none" keeps distances; "rms" divides by the RMS radius and
            "top_eig" by the RMS extent along the first axis (scale-invariant, as in tinv_mds).
    """

    invariances = frozenset({"translation", "rotation", "reflection", "permutation"})

    def __init__(
        self,
        group: Literal["o3", "so3"] = "o3",
        stochastic: bool = False,
        scale: Literal["none", "rms", "top_eig"] = "none",
    ) -> None:
        super().__init__()
        self.group = group
        self.stochastic = stochastic
        self.scale = scale
        self.deterministic = not stochastic
        self.invariances = pca_invariances(reflection=group == "o3", scale=scale != "none")

    def forward(self, points: Tensor) -> Tensor:
        """Compute all (or, stochastic in training, one random) frame elements.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, F, N, d) framed coordinates, same dtype as `points`; F = 2^d (o3) or
            2^(d-1) (so3), or 1 when stochastic in training mode.

        Raises:
            ValueError: as `check_clouds`.
        """
        check_enough_points(points)  # shape and finite values: Representation.__call__
        centred, _, axes = principal_axes(points)
        signs = self._sign_vectors(axes)  # (B, F, d)
        if self.stochastic and self.training:
            pick = torch.randint(signs.shape[1], (signs.shape[0],), device=signs.device)
            signs = signs[torch.arange(signs.shape[0], device=signs.device), pick].unsqueeze(1)
        # R_s^T (x - t) = diag(s) V^T (x - t): a per-column sign on the aligned cloud.
        aligned = centred @ axes
        if self.scale != "none":
            aligned = aligned / scale_divisor(aligned, points, self.scale).view(-1, 1, 1)
        frames = aligned.unsqueeze(1) * signs.unsqueeze(2)
        return frames.to(points.dtype)

    def _sign_vectors(self, axes: Tensor) -> Tensor:
        """(B, F, d) float64 sign vectors s of the frame elements V diag(s)."""
        batch, dim = axes.shape[0], axes.shape[-1]
        free = dim if self.group == "o3" else dim - 1
        signs = torch.tensor(list(itertools.product((1.0, -1.0), repeat=free)), dtype=axes.dtype, device=axes.device)
        signs = signs.expand(batch, -1, -1)
        if self.group == "o3":
            return signs
        # det(V diag(s)) = det(V) prod(s) = +1 fixes the last sign; det(V) is +-1.
        last = torch.linalg.det(axes).sign().view(-1, 1) * signs.prod(dim=-1)
        return torch.cat([signs, last.unsqueeze(-1)], dim=-1)
