"""Classical MDS on kNN-graph geodesic distances (Isomap-style; METHODS.md section 1, last part).

Graph shortest paths approximate distances measured *along* the sampled surface,
which an isometric bending (rolling a sheet, flexing a limb) leaves unchanged; so
besides rigid motions the output is approximately invariant to bending. Only the
exact symmetries are declared. Cost: O(N^2 log N + N^2 k) for the shortest paths
and O(N^3) for the N x N eigendecomposition, hence the `max_points` cap; the
result is deterministic and meant to be cached.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.linalg
import scipy.sparse
import torch
from pydantic import Field
from scipy.sparse.csgraph import connected_components, shortest_path
from scipy.spatial.distance import cdist
from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import Representation, SignRule, check_enough_points, column_signs


@REPRESENTATIONS.register("geodesic_mds")
class GeodesicMDS(Representation):
    """Top `dims` classical-MDS coordinates of the symmetric-kNN shortest-path distances.

    The graph links i and j when either is among the other's k nearest neighbours,
    weighted by Euclidean length. Columns are ordered by descending eigenvalue
    (negative eigenvalues of the non-Euclidean geodesic Gram matrix are clipped to 0,
    giving zero columns) and oriented by the same rule as tinv_mds. Exact ties among
    neighbour distances (lattices) make the kNN choice, hence the output, depend on
    point order; generic clouds are permutation-equivariant.

    Computed per sample on the CPU (scipy's shortest paths take one graph at a time,
    so there is a Python loop over the batch), in float64, without gradient.

    Degenerate clouds: all points equal -> zeros; a disconnected kNN graph raises
    rather than inventing distances between components (raise k or clean the data).

    Args:
        k: neighbours per point; capped at N - 1 (complete graph, Euclidean MDS).
        dims: output dimensions m; may exceed d (curved shapes need more).
        max_points: largest N accepted, guarding the O(N^3) eigendecomposition.
        sign_rule: statistic that fixes each column's sign (see `column_signs`).
    """

    invariances = frozenset({"translation", "rotation", "reflection", "permutation"})

    def __init__(
        self,
        k: Annotated[int, Field(ge=2)] = 10,
        dims: Annotated[int, Field(ge=1)] = 3,
        max_points: Annotated[int, Field(ge=3)] = 2048,
        sign_rule: SignRule = "third_moment",
    ) -> None:
        super().__init__()
        self.k = k
        self.dims = dims
        self.max_points = max_points
        self.sign_rule = sign_rule

    def out_channels(self, dim: int) -> int:
        """`dims`, whatever the input's dimension: the embedding has its own coordinates."""
        return self.dims

    def forward(self, points: Tensor) -> Tensor:
        """Embed each cloud.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, dims) coordinates, same dtype and device as `points`.

        Raises:
            ValueError: as `check_clouds`; N above `max_points`; a disconnected kNN
                graph (naming the sample index).
        """
        check_enough_points(points)  # shape and finite values: Representation.__call__
        num_points = points.shape[1]
        if num_points > self.max_points:
            raise ValueError(
                f"geodesic_mds: N = {num_points} points exceeds max_points = {self.max_points} "
                "(the N x N eigendecomposition is O(N^3)); subsample the clouds or raise max_points"
            )
        clouds = points.detach().double().cpu().numpy()
        y = torch.from_numpy(np.stack([self._embed(cloud, index) for index, cloud in enumerate(clouds)]))
        y = y * column_signs(y, self.sign_rule).unsqueeze(1)
        return y.to(device=points.device, dtype=points.dtype).unsqueeze(1)

    def _embed(self, cloud: np.ndarray, index: int) -> np.ndarray:
        """(N, dims) unsigned classical MDS of one cloud's graph distances."""
        n = len(cloud)
        k = min(self.k, n - 1)
        euclid = cdist(cloud, cloud)
        np.fill_diagonal(euclid, np.inf)  # a point is not its own neighbour
        nbrs = np.argpartition(euclid, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        # Explicit zero weights (duplicate points) are kept as edges by csgraph.
        graph = scipy.sparse.csr_matrix((euclid[rows, nbrs.ravel()], (rows, nbrs.ravel())), shape=(n, n))
        # directed=False walks each kNN edge both ways: the symmetric kNN graph.
        parts, _ = connected_components(graph, directed=False)
        if parts > 1:
            raise ValueError(
                f"geodesic_mds: sample {index}: the symmetric {k}-NN graph has {parts} connected "
                "components, so some geodesic distances are infinite; raise k or clean the cloud"
            )
        sq = shortest_path(graph, method="D", directed=False) ** 2
        gram = -0.5 * (sq - sq.mean(axis=0) - sq.mean(axis=1, keepdims=True) + sq.mean())
        m = min(self.dims, n)
        vals, vecs = scipy.linalg.eigh(gram, subset_by_index=[n - m, n - 1])  # ascending
        y = vecs[:, ::-1] * np.sqrt(np.clip(vals[::-1], 0.0, None))
        return np.pad(y, ((0, 0), (0, self.dims - m)))
