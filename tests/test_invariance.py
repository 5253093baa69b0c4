"""Tests for the invariance certifier: the sampler, the error measures, the model certificate."""

import math

import pytest
import torch
from torch import nn

from clouds import anisotropic_clouds
from geosweep.invariance import (
    SCALE_RANGE,
    TOLERANCES,
    assert_invariant,
    assert_representation,
    certify_model,
    groups_of,
    invariance_error,
    sample_transforms,
)
from geosweep.representations.base import SYMMETRIES

DIMS = [2, 3]
DTYPES = [torch.float32, torch.float64]


def sorted_distances(points: torch.Tensor) -> torch.Tensor:
    """(B, N*N) sorted pairwise distances: invariant under E(d) and permutations."""
    return (points[:, :, None] - points[:, None]).norm(dim=-1).flatten(1).sort(dim=1).values


def centred(points: torch.Tensor) -> torch.Tensor:
    """Translation invariant and permutation-equivariant, not rotation invariant."""
    return points - points.mean(dim=1, keepdim=True)


ALL_BUT_SO = ("translation", "O(d)", "scale", "permutation")


def draw(groups, dim, count=16, seed=0, n=10):
    return sample_transforms(groups, dim, count, generator=torch.Generator().manual_seed(seed), num_points=n)


# --- sampling


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("group", ["SO(d)", "O(d)"])
def test_sampled_matrices_are_orthogonal(dim, group):
    for g in draw(group, dim):
        assert torch.allclose(g.rotation.T @ g.rotation, torch.eye(dim, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
def test_so_has_det_plus_one_and_o_alternates_with_reflections_first(dim):
    dets = torch.stack([torch.linalg.det(g.rotation) for g in draw("SO(d)", dim)])
    assert torch.allclose(dets, torch.ones_like(dets), atol=1e-12)
    dets = torch.stack([torch.linalg.det(g.rotation) for g in draw("O(d)", dim)])
    assert torch.allclose(dets, torch.tensor([-1.0, 1.0], dtype=torch.float64).repeat(8), atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
def test_haar_rotations_average_to_zero(dim):
    # The Haar mean of SO(d) is the zero matrix; a biased sampler (e.g. no sign fix after QR) is not.
    mean = torch.stack([g.rotation for g in draw("SO(d)", dim, count=4000)]).mean(0)
    assert mean.abs().max() < 0.06


def test_sampling_is_deterministic_by_seed_and_dtype_independent():
    a, b, c = draw(ALL_BUT_SO, 3, seed=1), draw(ALL_BUT_SO, 3, seed=1), draw(ALL_BUT_SO, 3, seed=2)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.rotation, y.rotation) and torch.equal(x.translation, y.translation)
        assert torch.equal(x.perm, y.perm) and x.scale == y.scale
    assert not torch.equal(a[0].rotation, c[0].rotation)
    f32 = sample_transforms("O(d)", 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    f64 = sample_transforms("O(d)", 3, 4, generator=torch.Generator().manual_seed(1))
    for x, y in zip(f32, f64, strict=True):
        assert x.rotation.dtype == torch.float32 and torch.allclose(x.rotation.double(), y.rotation)


def test_unsampled_parts_are_identities_and_sampled_ones_in_range():
    for g in draw("scale", 3, n=7):
        assert torch.equal(g.rotation, torch.eye(3, dtype=torch.float64)) and not g.translation.any()
        assert g.perm is None
        assert SCALE_RANGE[0] <= g.scale <= SCALE_RANGE[1]
    for g in draw("permutation", 2, n=7):
        assert sorted(g.perm.tolist()) == list(range(7)) and g.scale == 1.0
    with pytest.raises(ValueError, match="num_points"):
        sample_transforms("permutation", 3, 1, generator=torch.Generator())
    with pytest.raises(ValueError, match="unknown groups"):
        sample_transforms("rotation", 3, 1, generator=torch.Generator())


def test_transform_acts_as_documented():
    g = draw(ALL_BUT_SO, 3, n=5)[0]
    x = anisotropic_clouds(3, b=2, n=5)
    expected = (g.scale * x @ g.rotation.T + g.translation)[:, g.perm]
    assert torch.allclose(g(x), expected)
    assert g(x.float()).dtype == torch.float32


def test_groups_of_maps_declarations():
    assert groups_of({"rotation"}) == ("SO(d)",)
    assert groups_of({"rotation", "reflection", "translation", "permutation", "scale"}) == (
        "translation",
        "O(d)",
        "scale",
        "permutation",
    )
    assert groups_of(frozenset()) == ()
    with pytest.raises(ValueError, match="reflection"):
        groups_of({"reflection"})
    with pytest.raises(ValueError, match="unknown"):
        groups_of({"rotaton"})
    groups_of(SYMMETRIES)  # every symmetry a representation may declare is understood


# --- errors and assertions


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_invariant_function_has_tiny_error_raw_coordinates_large(dim, dtype):
    x = anisotropic_clouds(dim, dtype)
    groups = ("translation", "O(d)", "permutation")
    assert invariance_error(sorted_distances, x, groups) <= TOLERANCES[dtype]
    assert_invariant(sorted_distances, x, groups)
    assert invariance_error(centred, x, "SO(d)") > 0.3
    assert invariance_error(lambda p: p, x, "translation") > 0.3


def test_assert_invariant_names_the_failing_group_error_and_tolerance():
    x = anisotropic_clouds(3)
    errors = assert_invariant(centred, x, "translation")
    assert set(errors) == {"translation"} and errors["translation"] < 1e-12
    message = r"invariant under O\(d\) \(d=3, torch.float64\): error \d.* > tolerance 1e-05"
    with pytest.raises(AssertionError, match=message):
        assert_invariant(centred, x, ("translation", "O(d)"))
    with pytest.raises(AssertionError, match=r"under scale.*tolerance 0.5"):
        assert_invariant(centred, x, "scale", tol=0.5)


def test_non_finite_output_fails():
    x = anisotropic_clouds(2)
    with pytest.raises(AssertionError, match="error nan"):
        assert_invariant(lambda p: sorted_distances(p) * math.nan, x, "SO(d)")


def test_permutation_equivariant_mode():
    x = anisotropic_clouds(3)
    assert invariance_error(centred, x, "permutation", permutation="equivariant") < 1e-12
    assert invariance_error(centred, x, "permutation") > 0.3  # equivariant, so not invariant
    assert invariance_error(lambda p: centred(p).cumsum(1), x, "permutation", permutation="equivariant") > 0.3
    # The point axis of the output is configurable: (B, 1, N, d) frames index points on axis 2.
    frames = lambda p: centred(p).unsqueeze(1)  # noqa: E731
    assert invariance_error(frames, x, "permutation", permutation="equivariant", point_axis=2) < 1e-12
    with pytest.raises(AssertionError, match="equivariant under permutation"):
        assert_invariant(lambda p: centred(p).cumsum(1), x, "permutation", permutation="equivariant")


def test_frame_axis_compares_frames_as_a_set():
    # Two frames whose ORDER depends on where the cloud sits; as a set they are invariant.
    def frames(p):
        a = sorted_distances(p)
        flip = torch.sign(p.sum(dim=(1, 2)))[:, None]
        return torch.stack([flip * a, -flip * a], dim=1)

    x = anisotropic_clouds(3, b=8, offset=0.0)  # centroids near 0, so translations flip the order for some clouds
    assert invariance_error(frames, x, "translation") > 1.0
    assert invariance_error(frames, x, "translation", frame_axis=1) < 1e-12

    # A set that collapses under the transform (both frames equal) is not the same set.
    def collapsing(p):
        a = sorted_distances(p)
        second = torch.where(p.sum(dim=(1, 2))[:, None] > 0, a, -a)
        return torch.stack([a, second], dim=1)

    assert invariance_error(collapsing, x, "translation", frame_axis=1) > 1.0


@pytest.mark.parametrize("dim", DIMS)
def test_vector_axis_checks_that_vectors_turn_with_the_input(dim):
    x = anisotropic_clouds(dim)
    # Centred coordinates turn with the input: equivariant, so not invariant.
    assert invariance_error(centred, x, "O(d)", vector_axis=-1) < 1e-12
    assert invariance_error(centred, x, "O(d)") > 0.3
    # Translations leave them unchanged; the turned comparison applies to the orthogonal part only.
    assert invariance_error(centred, x, ("translation", "O(d)"), vector_axis=-1) < 1e-12
    # Vectors on another axis: (B, d, N) instead of (B, N, d).
    assert invariance_error(lambda p: centred(p).mT, x, "O(d)", vector_axis=1) < 1e-12
    squared = lambda p: centred(p) ** 2  # noqa: E731
    with pytest.raises(AssertionError, match=r"not equivariant under SO\(d\)"):
        assert_invariant(squared, x, "SO(d)", vector_axis=-1)


class NoisyCentred(nn.Module):
    """A representation that is stochastic in training mode only (like train-time augmentation)."""

    invariances = frozenset({"translation", "permutation"})

    def forward(self, points):
        noise = 0.1 * torch.randn_like(points) if self.training else 0.0
        return (centred(points) + noise).unsqueeze(1)


def test_assert_representation_uses_eval_mode_and_restores_it():
    rep = NoisyCentred()
    errors = assert_representation(rep, anisotropic_clouds(3))
    assert set(errors) == {"translation", "permutation"} and max(errors.values()) < 1e-12
    assert rep.training
    rep.invariances = frozenset({"translation", "rotation"})
    with pytest.raises(AssertionError, match=r"SO\(d\)"):
        assert_representation(rep, anisotropic_clouds(3))


def test_assert_representation_equivariant_checks_the_declared_groups_only():
    rep = NoisyCentred()
    rep.equivariances = frozenset({"rotation", "reflection"})
    assert set(assert_representation(rep, anisotropic_clouds(3), "equivariances")) == {"O(d)"}
    assert rep.training
    rep.equivariances = frozenset()
    assert assert_representation(rep, anisotropic_clouds(3), "equivariances") == {}


# --- model certificate


class DistanceClassifier(nn.Module):
    """E(d)- and permutation-invariant: pooled statistics of pairwise distances -> logits."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)  # active in train mode: certify_model must switch to eval
        self.head = nn.Linear(3, classes)

    def forward(self, points):
        d = (points[:, :, None] - points[:, None]).norm(dim=-1)
        feats = torch.stack([d.mean((1, 2)), d.amax((1, 2)), (d**2).mean((1, 2)).sqrt()], dim=-1)
        return self.head(self.dropout(feats))


class MaxPoolClassifier(nn.Module):
    """Permutation invariant (max pool over points) but not rotation or translation invariant."""

    def __init__(self, dim: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.head = nn.Linear(dim, classes)

    def forward(self, points):
        return self.head(points.amax(dim=1))


E3 = {"translation", "rotation", "reflection"}


def test_certify_invariant_model():
    torch.manual_seed(0)
    model = DistanceClassifier().double()
    model.train()
    out = certify_model(model, anisotropic_clouds(3, b=40), E3, samples=6)
    assert set(out) == {"invariance/max_logit_diff", "invariance/pred_agreement"}
    assert out["invariance/max_logit_diff"] < 1e-10 and out["invariance/pred_agreement"] == 1.0
    assert model.training


def test_certify_non_invariant_model_and_chunking():
    torch.manual_seed(0)
    model = MaxPoolClassifier()
    x = anisotropic_clouds(3, torch.float32, b=40)
    out = certify_model(model, x, E3, samples=6)
    assert out["invariance/pred_agreement"] < 1.0 and out["invariance/max_logit_diff"] > 0.1
    assert certify_model(model, x, E3, samples=6, chunk_size=7) == out
    # Permutation is always included, and a max pool is invariant to it.
    assert certify_model(model, x, set(), samples=6)["invariance/max_logit_diff"] == 0.0
