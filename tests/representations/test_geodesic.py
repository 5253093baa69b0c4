"""Tests for geodesic_mds: classical MDS on symmetric-kNN shortest-path distances."""

import numpy as np
import pytest
import torch
from test_mds import isometry, rel_err

from clouds import generic_clouds
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.geodesic import GeodesicMDS
from geosweep.representations.mds import TinvMDS

MODE = "donot_use_mm_for_euclid_dist"  # cdist without matmul cancellation


def strip_and_roll(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random 4 x 1 flat strip in 3-D, and the same points rolled onto a half cylinder.

    Rolling u onto an arc of radius 4 / pi is an isometric bending: distances along
    the surface are unchanged, 3-D Euclidean distances across the roll shrink.
    """
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0.0, 4.0, n), rng.uniform(0.0, 1.0, n)
    radius = 4.0 / np.pi
    flat = np.stack([u, v, np.zeros(n)], axis=1)
    rolled = np.stack([radius * np.sin(u / radius), v, radius * (1.0 - np.cos(u / radius))], axis=1)
    return torch.tensor(flat[None]), torch.tensor(rolled[None])


def pairwise(frames: torch.Tensor) -> torch.Tensor:
    return torch.cdist(frames[:, 0], frames[:, 0], compute_mode=MODE)


def test_approximately_invariant_to_isometric_bending():
    flat, rolled = strip_and_roll(300, seed=0)
    rep = GeodesicMDS(k=8, dims=2)
    # Both graphs' shortest paths overestimate the true surface distances by the same
    # ~5 % zig-zag, so flat and rolled agree far better than either matches the truth;
    # the residue (observed ~7e-4) comes from chords on the cylinder being shorter
    # than arcs (~h^2 / 24 R^2 for hop length h) and from neighbour sets that shift
    # slightly with the bending. 5e-3 leaves margin for other seeds and BLAS builds.
    assert rel_err(pairwise(rep(rolled)), pairwise(rep(flat))) < 5e-3
    # Contrast: Euclidean MDS sees the roll (observed ~0.17).
    euclid = TinvMDS()
    assert rel_err(pairwise(euclid(rolled)), pairwise(euclid(flat))) > 0.1


@pytest.mark.parametrize("det", [1, -1])
@pytest.mark.parametrize("dim", [2, 3])
def test_exactly_invariant_to_rigid_motions(dim, det):
    rep = GeodesicMDS()
    points = generic_clouds(dim)
    q, t = isometry(dim, det, seed=9)
    assert rel_err(rep(points @ q.T + t), rep(points)) < 1e-9


@pytest.mark.parametrize("dim", [2, 3])
def test_permutation_equivariant(dim):
    rep = GeodesicMDS()
    points = generic_clouds(dim)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(3))
    assert rel_err(rep(points[:, perm]), rep(points)[:, :, perm]) < 1e-9


@pytest.mark.parametrize("dim", [2, 3])
def test_complete_graph_reduces_to_tinv_mds(dim):
    # k >= N - 1 is capped to the complete graph, whose shortest paths are the
    # Euclidean distances: classical MDS then equals tinv_mds, signs included.
    points = generic_clouds(dim)
    assert rel_err(GeodesicMDS(k=500, dims=dim)(points), TinvMDS()(points)) < 1e-8


def test_more_dims_than_points_pads_with_zeros():
    out = GeodesicMDS(dims=6)(generic_clouds(3, n=4))
    assert out.shape == (4, 1, 4, 6)
    assert torch.equal(out[..., 4:], torch.zeros_like(out[..., 4:]))


def test_duplicate_points_stay_connected():
    # 12 copies of one point with k = 10: each copy's neighbours are other copies at
    # distance 0, so only zero-length edges tie most copies to the rest. csgraph must
    # keep those explicit zeros as edges, or the graph falls apart.
    points = generic_clouds(3)
    points[:, :12] = points[:, :1]
    out = GeodesicMDS()(points)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[:, :, :12], out[:, :, :1].expand(-1, -1, 12, -1), atol=1e-12)


def test_point_cap_names_n_and_the_cap():
    with pytest.raises(ValueError, match="N = 64 points exceeds max_points = 50"):
        GeodesicMDS(max_points=50)(generic_clouds(3))


def test_a_disconnected_graph_is_bridged_by_its_shortest_edges_and_counted():
    # Three runs of 10 points along a line, far apart and shuffled: the 2-NN graph falls into three
    # components. Along a line graph paths are exact, so only bridges between the runs' nearest ends
    # (9 -> 100, 109 -> 300) keep every geodesic equal to the Euclidean distance, and MDS exact.
    x = torch.cat([torch.arange(10.0), 100 + torch.arange(10.0), 300 + torch.arange(10.0)]).double() ** 1.01
    line = x[:, None] * torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64)
    line = line[torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    unbroken = torch.arange(30.0, dtype=torch.float64)[:, None] ** 1.01 * torch.tensor([[0.0, 1.0, 0.0]])
    points = torch.stack([unbroken, line])
    rep = GeodesicMDS(k=2)
    out = rep(points)
    expected = torch.cdist(line, line, compute_mode=MODE)
    assert rel_err(torch.cdist(out[1, 0], out[1, 0], compute_mode=MODE), expected) < 1e-10
    assert rep.fallback_counts(points) == {"knn_bridged": 1}
    assert GeodesicMDS(k=29).fallback_counts(points) == {"knn_bridged": 0}  # complete graph: nothing to bridge


def test_bridging_joins_two_far_clusters_and_keeps_each_clusters_geodesics():
    points = generic_clouds(3, b=3, n=40)
    points[1, 20:] += 1000.0  # two far clusters of 20 points: 10-NN never bridges them
    rep = GeodesicMDS()
    out = rep(points)
    assert rep.fallback_counts(points) == {"knn_bridged": 1}
    # The other samples' embeddings are untouched by sample 1's bridge.
    assert rel_err(out[[0, 2]], rep(points[[0, 2]])) < 1e-12
    # The clusters stay as far apart in the embedding as the bridge is long.
    bridge = torch.cdist(points[1, :20], points[1, 20:]).min()
    assert torch.isfinite(out).all() and rel_err(torch.cdist(out[1, 0, :20], out[1, 0, 20:]).min(), bridge) < 0.05
    q, t = isometry(3, -1, seed=4)
    assert rel_err(rep(points @ q.T + t), out) < 1e-9  # bridges are chosen by distances alone


def test_dtype_device_and_no_gradient_path():
    points = generic_clouds(3, dtype=torch.float32).requires_grad_()
    out = GeodesicMDS()(points)
    assert out.dtype == torch.float32 and not out.requires_grad


def test_registry_validates_ranges():
    rep = REPRESENTATIONS.build("geodesic_mds", {"k": 6, "dims": 5})
    assert isinstance(rep, GeodesicMDS) and rep.out_channels(3) == 5 and rep.out_channels(2) == 5
    assert rep.invariances == {"translation", "rotation", "reflection", "permutation"}
    assert rep.deterministic
    for bad in ({"k": 1}, {"dims": 0}, {"max_points": 2}, {"k": 2.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            REPRESENTATIONS.build("geodesic_mds", bad)
