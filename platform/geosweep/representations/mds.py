"""TinvNN's modified classical MDS (METHODS.md section 1), computed the fast way.

On Euclidean distances classical MDS equals PCA alignment of the centred cloud:
Y = Xc V with V the eigenvectors of Xc^T Xc. That costs O(N d^2) instead of the
O(N^3) eigendecomposition of the N x N Gram matrix, which is kept here only as a
test oracle (`classical_mds_oracle`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import (
    Representation,
    SignRule,
    check_enough_points,
    column_signs,
    pca_invariances,
    principal_axes,
    scale_divisor,
)

# A radius at or below this many ulps of the cloud's magnitude is round-off, not shape.


@REPRESENTATIONS.register("tinv_mds")
class TinvMDS(Representation):
    """Centred cloud in its principal axes, one frame, column signs fixed by a moment rule.

    Columns are ordered by descending eigenvalue and oriented by `column_signs`. The
    output is discontinuous where a column's statistic is ~0 (mirror-symmetric
    shapes) or eigenvalues repeat; `ambiguity_stats` counts such samples.

    Degenerate clouds: all points equal -> zeros; collinear / coplanar clouds -> the
    null-space columns are zero up to round-off (their eigenvectors are arbitrary but
    multiply zero). Neither yields NaN. NaN / inf input and N < d + 1 raise.

    Args:
        sign_rule: which statistic fixes each column's sign.
        scale: "none" keeps distances; "rms" divides by the RMS radius
            sqrt(mean_i |x_i - t|^2); "top_eig" divides by sqrt(lambda_max / N), the
            standard deviation along the first principal axis (lambda_max the top
            eigenvalue of Xc^T Xc). A radius at or below 16 ulps of the cloud's largest
            coordinate (round-off of identical points) gives all-zero output.
        orientation: "o3" fixes every column by the sign rule (invariant to
            reflections too, so mirror images coincide); "so3" then overrides the
            last column's sign so that det(V diag(signs)) = +1, a proper rotation of
            the input, so mirror images stay distinct.
    """

    invariances = frozenset({"translation", "rotation", "reflection", "permutation"})

    def __init__(
        self,
        sign_rule: SignRule = "third_moment",
        scale: Literal["none", "rms", "top_eig"] = "none",
        orientation: Literal["o3", "so3"] = "o3",
    ) -> None:
        super().__init__()
        self.sign_rule = sign_rule
        self.scale = scale
        self.orientation = orientation
        self.invariances = pca_invariances(reflection=orientation == "o3", scale=scale != "none")

    def forward(self, points: Tensor) -> Tensor:
        """Canonicalise each cloud, batched over B.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) canonical coordinates, same dtype as `points`.

        Raises:
            ValueError: as `check_clouds`.
        """
        check_enough_points(points)  # shape and finite values: Representation.__call__
        centred, _, axes = principal_axes(points)
        y = centred @ axes
        signs = column_signs(y, self.sign_rule)
        if self.orientation == "so3":
            # det(axes) is +-1; pick the last sign so that det(axes diag(signs)) = +1.
            det = torch.linalg.det(axes).sign()
            signs[:, -1] = det * signs[:, :-1].prod(dim=1)
        y = y * signs.unsqueeze(1)
        if self.scale != "none":
            y = y / scale_divisor(y, points, self.scale).view(-1, 1, 1)
        return y.to(points.dtype).unsqueeze(1)


def classical_mds_oracle(points: np.ndarray) -> np.ndarray:
    """Textbook classical MDS through the N x N double-centred squared distances.

    Test oracle only: O(N^3), and column signs are whatever the eigensolver returns.

    Args:
        points: (N, d) float64 point cloud.

    Returns:
        (N, d) embedding Y = U_d L_d^{1/2}, columns by descending eigenvalue.
    """
    n, d = points.shape
    sq_dist = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    j = np.eye(n) - np.full((n, n), 1.0 / n)
    gram = -0.5 * j @ sq_dist @ j
    vals, vecs = np.linalg.eigh(gram)
    vals, vecs = vals[::-1][:d], vecs[:, ::-1][:, :d]
    # Round-off can make a zero eigenvalue slightly negative.
    return vecs * np.sqrt(np.clip(vals, 0.0, None))
