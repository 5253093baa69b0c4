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
from geosweep.representations.base import Representation, check_points


@REPRESENTATIONS.register("tinv_mds")
class TinvMDS(Representation):
    """Centred cloud in its principal axes, one frame, column signs fixed by a moment rule.

    Columns are ordered by descending eigenvalue. Column j is multiplied by the sign
    of a per-column statistic that is a sum over points, hence permutation invariant:
    "third_moment" uses sum_i y_ij^3, "abs_weighted" uses sum_i y_ij |y_ij|. A zero
    statistic (a mirror-symmetric cloud along that axis) maps to +1; there the sign
    is ill-defined and the output is discontinuous, as it is at repeated
    eigenvalues. The column sum cannot serve as a rule: it is exactly 0.

    Args:
        sign_rule: which statistic fixes each column's sign.
    """

    invariances = frozenset({"translation", "rotation", "reflection", "permutation"})

    def __init__(self, sign_rule: Literal["third_moment", "abs_weighted"] = "third_moment") -> None:
        super().__init__()
        self.sign_rule = sign_rule

    def out_channels(self, dim: int) -> int:
        return dim

    def forward(self, points: Tensor) -> Tensor:
        """Canonicalise each cloud, batched over B.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) canonical coordinates, same dtype as `points`.
        """
        check_points(points)
        # float64 throughout: float32 covariance loses eigenvector accuracy at
        # small eigengaps, and the cost is only O(N d^2).
        x = points.double()
        centred = x - x.mean(dim=1, keepdim=True)
        # Eigenvectors are detached: eigh's backward blows up at small eigengaps.
        cov = centred.detach().mT @ centred.detach()
        _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
        y = centred @ vecs.flip(-1)
        if self.sign_rule == "third_moment":
            stat = (y**3).sum(dim=1)
        else:
            stat = (y * y.abs()).sum(dim=1)
        signs = torch.where(stat < 0, -1.0, 1.0).to(y.dtype)
        return (y * signs.unsqueeze(1)).to(points.dtype).unsqueeze(1)


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
