"""Tests for the tinv_mds representation against METHODS.md section 1."""

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group

from geosweep.registry import REPRESENTATIONS
from geosweep.representations import Representation
from geosweep.representations.mds import TinvMDS, classical_mds_oracle

SIGN_RULES = ["third_moment", "abs_weighted"]


def skewed_cloud(n: int, dim: int, seed: int) -> np.ndarray:
    """Anisotropic, skewed, randomly rotated and translated cloud, float64 (n, dim).

    Scales (4, 2, 1) keep the eigenvalues well separated and the quadratic skew
    keeps every principal axis' third moment far from 0; without both the
    canonical frame is ill-defined and no invariance test could pass.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, dim))
    z = z + 0.4 * (z**2 - 1.0)
    rot = special_ortho_group.rvs(dim, random_state=seed)
    return (z * np.array([4.0, 2.0, 1.0])[:dim]) @ rot.T + rng.normal(0.0, 5.0, dim)


def batch(dim: int, dtype: torch.dtype = torch.float64, b: int = 4, n: int = 64) -> torch.Tensor:
    """A (b, n, dim) batch of `skewed_cloud`s."""
    return torch.tensor(np.stack([skewed_cloud(n, dim, seed) for seed in range(b)]), dtype=dtype)


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
    y = TinvMDS()(batch(dim))[:, 0]
    var = (y**2).mean(dim=1)
    assert (var[:, :-1] / var[:, 1:] > 1.5).all()
    skew = (y**3).mean(dim=1) / var**1.5
    assert (skew > 0.2).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_matches_classical_mds_oracle_up_to_column_signs(dim):
    points = batch(dim)
    out = TinvMDS()(points)[:, 0]
    for cloud, y in zip(points.numpy(), out):
        expected = torch.tensor(classical_mds_oracle(cloud))
        signs = torch.sign((y * expected).sum(dim=0))
        assert rel_err(y * signs, expected) < 1e-5


@pytest.mark.parametrize("dim", [2, 3])
def test_preserves_pairwise_distances(dim):
    points = batch(dim)
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
    points = batch(dim)
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
    points = batch(dim)
    perm = torch.randperm(points.shape[1], generator=torch.Generator().manual_seed(0))
    assert rel_err(rep(points[:, perm]), rep(points)[:, :, perm]) < 1e-10


@pytest.mark.parametrize("dim", [2, 3])
def test_sign_rules_fix_positive_statistics(dim):
    y3 = TinvMDS("third_moment")(batch(dim))[:, 0]
    assert ((y3**3).sum(dim=1) > 0).all()
    ya = TinvMDS("abs_weighted")(batch(dim))[:, 0]
    assert ((ya * ya.abs()).sum(dim=1) > 0).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_batched_equals_one_by_one(dim):
    rep = TinvMDS()
    points = batch(dim)
    singles = torch.cat([rep(cloud[None]) for cloud in points])
    assert rel_err(rep(points), singles) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_shape_dtype_out_channels(dim, dtype):
    rep = TinvMDS()
    out = rep(batch(dim, dtype=dtype, b=5, n=33))
    assert out.shape == (5, 1, 33, rep.out_channels(dim))
    assert rep.out_channels(dim) == dim
    assert out.dtype == dtype


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
