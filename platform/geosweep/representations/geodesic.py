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
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree, shortest_path
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

    Degenerate clouds: all points equal -> zeros. A disconnected kNN graph (separate parts of
    a real scan, outliers) is bridged: the components are joined by the shortest Euclidean
    edges that make them one tree (a minimum spanning tree over the components), so paths
    inside a component stay geodesic and a jump between components costs its straight-line
    length. `fallback_counts` says how many clouds needed it (a trial logs `repr/knn_bridged_frac`).

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
            ValueError: as `check_clouds`; N above `max_points`.
        """
        clouds = self._clouds(points)
        y = torch.from_numpy(np.stack([self._embed(cloud) for cloud in clouds]))
        y = y * column_signs(y, self.sign_rule).unsqueeze(1)
        return y.to(device=points.device, dtype=points.dtype).unsqueeze(1)

    def fallback_counts(self, points: Tensor) -> dict[str, int]:
        """{"knn_bridged": how many of these clouds have a disconnected kNN graph, which `forward` bridges}.

        Counted apart from `forward` (the same graph, without its shortest paths), so a trial whose
        embeddings come from the cache still logs it.

        Raises:
            ValueError: as `forward`.
        """
        graphs = (self._knn_graph(cloud)[0] for cloud in self._clouds(points))
        return {"knn_bridged": sum(connected_components(graph, directed=False)[0] > 1 for graph in graphs)}

    def _clouds(self, points: Tensor) -> np.ndarray:
        """The checked clouds as one float64 numpy array."""
        check_enough_points(points)  # shape and finite values: Representation.__call__
        num_points = points.shape[1]
        if num_points > self.max_points:
            raise ValueError(
                f"geodesic_mds: N = {num_points} points exceeds max_points = {self.max_points} "
                "(the N x N eigendecomposition is O(N^3)); subsample the clouds or raise max_points"
            )
        return points.detach().double().cpu().numpy()

    def _knn_graph(self, cloud: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
        """One cloud's kNN graph (directed; walked both ways it is the symmetric one) and its distance matrix."""
        n = len(cloud)
        k = min(self.k, n - 1)
        euclid = cdist(cloud, cloud)
        np.fill_diagonal(euclid, np.inf)  # a point is not its own neighbour
        nbrs = np.argpartition(euclid, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        # Explicit zero weights (duplicate points) are kept as edges by csgraph.
        graph = scipy.sparse.csr_matrix((euclid[rows, nbrs.ravel()], (rows, nbrs.ravel())), shape=(n, n))
        return graph, euclid

    def _embed(self, cloud: np.ndarray) -> np.ndarray:
        """(N, dims) unsigned classical MDS of one cloud's graph distances."""
        n = len(cloud)
        graph, euclid = self._knn_graph(cloud)
        # directed=False walks each kNN edge both ways: the symmetric kNN graph.
        parts, labels = connected_components(graph, directed=False)
        if parts > 1:
            graph = bridged(graph, euclid, labels, parts)
        sq = shortest_path(graph, method="D", directed=False) ** 2
        gram = -0.5 * (sq - sq.mean(axis=0) - sq.mean(axis=1, keepdims=True) + sq.mean())
        m = min(self.dims, n)
        vals, vecs = scipy.linalg.eigh(gram, subset_by_index=[n - m, n - 1])  # ascending
        y = vecs[:, ::-1] * np.sqrt(np.clip(vals[::-1], 0.0, None))
        return np.pad(y, ((0, 0), (0, self.dims - m)))


def bridged(
    graph: scipy.sparse.csr_matrix, euclid: np.ndarray, labels: np.ndarray, parts: int
) -> scipy.sparse.csr_matrix:
    """`graph` with its components joined by the shortest Euclidean edges that make them one tree.

    Between every two components the shortest edge is a candidate; a minimum spanning tree over the
    components keeps the parts - 1 that join them most cheaply (for any split of the components into two
    groups it holds the shortest edge across).

    Args:
        graph: (N, N) kNN graph with `parts` connected components.
        euclid: (N, N) Euclidean distances.
        labels: (N,) each point's component.
        parts: the number of components.
    """
    members = [np.flatnonzero(labels == part) for part in range(parts)]
    shortest = np.zeros((parts, parts))  # zero: no edge, to minimum_spanning_tree
    ends = {}
    for a in range(parts):
        for b in range(a + 1, parts):
            block = euclid[np.ix_(members[a], members[b])]
            i, j = np.unravel_index(block.argmin(), block.shape)
            # + 1 keeps a zero length (duplicate points) an edge; every spanning tree has parts - 1 edges, so
            # the shift changes which tree is minimal not at all.
            shortest[a, b] = block[i, j] + 1.0
            ends[a, b] = members[a][i], members[b][j]
    tree = minimum_spanning_tree(shortest).tocoo()
    new = np.array([ends[min(a, b), max(a, b)] for a, b in zip(tree.row, tree.col, strict=True)])
    old = graph.tocoo()
    rows, cols = np.r_[old.row, new[:, 0]], np.r_[old.col, new[:, 1]]
    return scipy.sparse.csr_matrix((np.r_[old.data, euclid[new[:, 0], new[:, 1]]], (rows, cols)), shape=graph.shape)
