"""Tests for the tinv_mds representation against METHODS.md section 1."""

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group

from clouds import generic_clouds
from geosweep.registry import REPRESENTATIONS
from geosweep.representations import Representation, ambiguity_stats
from geosweep.representations.mds import TinvMDS, classical_mds_oracle

SIGN_RULES = ["third_moment", "abs_weighted"]


def isometry(dim: int, det: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random orthogonal matrix with the given determinant, and a random translation."""
    q = special_ortho_group.rvs(dim, random_state=seed)
    if det < 0:
        q = q @ np.diag([1.0] * (dim - 1) + [-1.0])
    assert np.isclose(np.linalg.det(q), det)
    t = np.random.default_rng(seed).normal(0.0, 10.0, dim)
    return torch.tensor(q), torch.tensor(t)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("dim", [2, 3])
def test_clouds_are_well_conditioned(dim):
    # Guards the premise of every other test: distinct eigenvalues, nonzero third moments.
    y = TinvMDS()(generic_clouds(dim))[:, 0]
    var = (y**2).mean(dim=1)
    assert (var[:, :-1] / var[:, 1:] > 1.5).all()
    skew = (y**3).mean(dim=1) / var**1.5
    assert (skew > 0.2).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_matches_classical_mds_oracle_up_to_column_signs(dim):
    points = generic_clouds(dim)
    out = TinvMDS()(points)[:, 0]
    for cloud, y in zip(points.numpy(), out, strict=True):
        expected = torch.tensor(classical_mds_oracle(cloud))
        signs = torch.sign((y * expected).sum(dim=0))
        assert rel_err(y * signs, expected) < 1e-5


@pytest.mark.parametrize("dim", [2, 3])
def test_preserves_pairwise_distances(dim):
    points = generic_clouds(dim)
    y = TinvMDS()(points)[:, 0]
    # cdist's default matmul path loses ~1e-9 to cancellation on off-centre clouds;
    # the direct path measures MDS alone (observed error ~1e-16).
    mode = "donot_use_mm_for_euclid_dist"
    after = torch.cdist(y, y, compute_mode=mode)
    assert rel_err(after, torch.cdist(points, points, compute_mode=mode)) < 1e-5


@pytest.mark.parametrize("sign_rule", SIGN_RULES)
@pytest.mark.parametrize("det", [1, -1])
@pytest.mark.parametrize("dim", [2, 3])
def test_invariant_to_rotation_reflection_translation(dim, det, sign_rule):
    rep = TinvMDS(sign_rule=sign_rule)
    points = generic_clouds(dim)
    q, t = isometry(dim, det, seed=7)
    moved = points @ q.T + t
    assert rel_err(rep(moved), rep(points)) < 1e-10
    # float32 input: centring at |t| ~ 10 and the final cast dominate the error.
    out32 = rep(moved.float())
    assert out32.dtype == torch.float32
    assert rel_err(out32.double(), rep(points)) < 1e-5


@pytest.mark.parametrize("sign_rule", SIGN_RULES)
@pytest.mark.parametrize("dim", [2, 3])
def test_permutation_equivariant(dim, sign_rule):
    rep = TinvMDS(sign_rule=sign_rule)
    points = generic_clouds(dim)
    perm = torch.randperm(points.shape[1], generator=torch.Generator().manual_seed(0))
    assert rel_err(rep(points[:, perm]), rep(points)[:, :, perm]) < 1e-10


@pytest.mark.parametrize("dim", [2, 3])
def test_sign_rules_fix_positive_statistics(dim):
    y3 = TinvMDS("third_moment")(generic_clouds(dim))[:, 0]
    assert ((y3**3).sum(dim=1) > 0).all()
    ya = TinvMDS("abs_weighted")(generic_clouds(dim))[:, 0]
    assert ((ya * ya.abs()).sum(dim=1) > 0).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_batched_equals_one_by_one(dim):
    rep = TinvMDS()
    points = generic_clouds(dim)
    singles = torch.cat([rep(cloud[None]) for cloud in points])
    assert rel_err(rep(points), singles) < 1e-12


def test_constant_cloud_gives_zeros():
    # Degenerate input must not produce NaN: covariance 0, statistics 0 -> sign +1.
    out = TinvMDS()(torch.ones(2, 10, 3))
    assert torch.equal(out, torch.zeros(2, 1, 10, 3))


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        TinvMDS()(torch.zeros(10, 3))
    with pytest.raises(ValueError):
        TinvMDS()(torch.zeros(1, 10, 4))


def test_registry_builds_and_validates_sign_rule():
    rep = REPRESENTATIONS.build("tinv_mds", {"sign_rule": "abs_weighted"})
    assert isinstance(rep, TinvMDS) and isinstance(rep, Representation)
    assert rep.sign_rule == "abs_weighted"
    assert REPRESENTATIONS.build("tinv_mds", {}).sign_rule == "third_moment"
    assert TinvMDS.invariances == {"translation", "rotation", "reflection", "permutation"}
    assert not list(rep.parameters())
    with pytest.raises(ValueError, match="sign_rule"):
        REPRESENTATIONS.build("tinv_mds", {"sign_rule": "sum"})


# --- scale and orientation -------------------------------------------------------------


@pytest.mark.parametrize("scale", ["rms", "top_eig"])
@pytest.mark.parametrize("dim", [2, 3])
def test_scale_invariant(dim, scale):
    rep = TinvMDS(scale=scale)
    points = generic_clouds(dim)
    q, t = isometry(dim, det=-1, seed=3)
    for factor in (1e-3, 7.5, 1e3):
        assert rel_err(rep(factor * points @ q.T + t), rep(points)) < 1e-10
    y = rep(points)[:, 0]
    if scale == "rms":
        assert torch.allclose(y.square().sum(-1).mean(-1), torch.ones(4, dtype=y.dtype))
    else:
        assert torch.allclose(y[..., 0].square().mean(-1), torch.ones(4, dtype=y.dtype))


@pytest.mark.parametrize("dim", [2, 3])
def test_so3_orientation_is_a_proper_rotation_of_the_input(dim):
    points = generic_clouds(dim)
    y = TinvMDS(orientation="so3")(points)[:, 0]
    centred = points - points.mean(dim=1, keepdim=True)
    rot = torch.linalg.lstsq(centred, y).solution  # y = centred @ rot
    assert torch.allclose(rot.mT @ rot, torch.eye(dim, dtype=rot.dtype).expand_as(rot), atol=1e-10)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(4, dtype=rot.dtype))


@pytest.mark.parametrize("dim", [2, 3])
def test_so3_orientation_is_rotation_invariant_but_sees_mirror_images(dim):
    rep = TinvMDS(orientation="so3")
    points = generic_clouds(dim)
    q, t = isometry(dim, det=1, seed=5)
    assert rel_err(rep(points @ q.T + t), rep(points)) < 1e-10
    # The skewed clouds are chiral: their mirror image is not a rotated copy, and
    # so3 keeps them apart by flipping exactly the last column.
    qm, tm = isometry(dim, det=-1, seed=5)
    mirrored = rep(points @ qm.T + tm)
    assert rel_err(mirrored, rep(points)) > 0.1
    flip = torch.tensor([1.0] * (dim - 1) + [-1.0], dtype=points.dtype)
    assert rel_err(mirrored, rep(points) * flip) < 1e-10


def test_declared_invariances_follow_kwargs():
    assert TinvMDS().invariances == {"translation", "rotation", "reflection", "permutation"}
    assert TinvMDS(scale="rms").invariances == {"translation", "rotation", "reflection", "permutation", "scale"}
    assert TinvMDS(orientation="so3", scale="top_eig").invariances == {
        "translation",
        "rotation",
        "permutation",
        "scale",
    }
    assert TinvMDS().deterministic
    with pytest.raises(ValueError, match="scale"):
        REPRESENTATIONS.build("tinv_mds", {"scale": "max"})
    with pytest.raises(ValueError, match="orientation"):
        REPRESENTATIONS.build("tinv_mds", {"orientation": "se3"})


@pytest.mark.parametrize("scale", ["none", "rms", "top_eig"])
def test_constant_cloud_gives_zeros_for_every_scale(scale):
    points = torch.full((2, 10, 3), 0.1, dtype=torch.float64)
    assert torch.equal(TinvMDS(scale=scale)(points), torch.zeros(2, 1, 10, 3, dtype=torch.float64))


def test_round_off_radius_is_not_blown_up():
    # Points differing by ~1 ulp are one point up to round-off: scaling them to a
    # unit radius would turn noise into an O(1) shape, so the output is zero.
    gen = torch.Generator().manual_seed(0)
    points = 5.0 + 1e-15 * torch.randn(2, 10, 3, dtype=torch.float64, generator=gen)
    assert torch.equal(TinvMDS(scale="rms")(points), torch.zeros(2, 1, 10, 3, dtype=torch.float64))


# --- degenerate input, shared by every PCA / MDS representation ---------------------------

DEGENERACY_CHECKED = ["tinv_mds", "fa", "geodesic_mds"]


@pytest.mark.parametrize("name", DEGENERACY_CHECKED)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_names_the_sample(name, bad):
    points = generic_clouds(3)
    points[2, 5, 1] = bad
    points[3, 0, 0] = bad
    with pytest.raises(ValueError, match="sample 2: NaN or infinite"):
        REPRESENTATIONS.build(name, {})(points)


@pytest.mark.parametrize("name", DEGENERACY_CHECKED)
@pytest.mark.parametrize("dim", [2, 3])
def test_too_few_points_names_the_sample(name, dim):
    with pytest.raises(ValueError, match=rf"sample 0: {dim} points.*at least {dim + 1}"):
        REPRESENTATIONS.build(name, {})(generic_clouds(dim, n=dim))


@pytest.mark.parametrize("name", DEGENERACY_CHECKED)
def test_identical_points_give_zeros(name):
    out = REPRESENTATIONS.build(name, {})(torch.full((2, 12, 3), -2.5))
    assert out.shape[:3] == (2, out.shape[1], 12)
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("name", DEGENERACY_CHECKED)
@pytest.mark.parametrize("rank", [1, 2])
def test_rank_deficient_clouds_have_zero_null_columns(name, rank):
    # Collinear (rank 1) and coplanar (rank 2) 3-D clouds, rotated off the axes:
    # the null-space eigenvectors are arbitrary, but they multiply zero.
    rng = np.random.default_rng(rank)
    flat = np.zeros((3, 40, 3))
    flat[..., :rank] = rng.standard_normal((3, 40, rank)) * np.array([3.0, 1.0])[:rank]
    rot = special_ortho_group.rvs(3, random_state=rank)
    points = torch.tensor(flat @ rot.T + 4.0)
    out = REPRESENTATIONS.build(name, {})(points)
    assert torch.isfinite(out).all()
    if name == "geodesic_mds" and rank == 2:
        # Zig-zag graph paths across a plane are not a Euclidean metric, so the third
        # geodesic MDS column is genuinely nonzero there (not round-off): no claim.
        return
    # geodesic_mds takes a square root of Gram eigenvalues ~ eps * lambda_1.
    tol = 1e-6 if name == "geodesic_mds" else 1e-12
    assert out[..., rank:].abs().max() < tol * out.abs().max()
    # The remaining columns still hold the whole shape (along a line, graph paths are
    # exact; the tolerance only covers the sum of k-NN hops' round-off).
    mode = "donot_use_mm_for_euclid_dist"
    expected = torch.cdist(points, points, compute_mode=mode)
    got = torch.cdist(out[:, 0], out[:, 0], compute_mode=mode)
    assert rel_err(got, expected) < 1e-10


# --- ambiguity statistics --------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_ambiguity_stats_flags_symmetric_and_isotropic_clouds(dim):
    generic = generic_clouds(dim, b=2, n=64)
    # Centrally symmetric (X and -X): every third moment is 0, eigengaps stay large.
    half = generic_clouds(dim, b=1, n=32)
    half = half - half.mean(dim=1, keepdim=True)
    symmetric = torch.cat([half, -half], dim=1)
    # The vertices of a square / cube, repeated: all eigenvalues equal.
    corners = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=torch.float64)] * dim)
    corners = corners.repeat(64 // len(corners), 1)[None]

    stats = ambiguity_stats(generic)
    assert stats["ambiguous_sign_count"] == 0 and stats["small_eigengap_count"] == 0
    stats = ambiguity_stats(torch.cat([generic, symmetric]))
    assert stats == {
        "num_samples": 3,
        "ambiguous_sign_count": 1,
        "ambiguous_sign_frac": pytest.approx(1 / 3),
        "small_eigengap_count": 0,
        "small_eigengap_frac": 0.0,
    }
    stats = ambiguity_stats(torch.cat([generic, corners]))
    assert stats["small_eigengap_count"] == 1 and stats["small_eigengap_frac"] == pytest.approx(1 / 3)


def test_ambiguity_stats_flags_degenerate_clouds():
    points = torch.zeros(2, 20, 3, dtype=torch.float64)
    points[1, :, 0] = torch.linspace(0.0, 1.0, 20) ** 2  # collinear and skewed
    stats = ambiguity_stats(points)
    assert stats["ambiguous_sign_count"] == 2 and stats["small_eigengap_count"] == 2
    with pytest.raises(ValueError, match="sample 1"):
        ambiguity_stats(torch.stack([points[0], torch.full((20, 3), float("nan"))]))
