"""Tests for the raw representation, the non-invariant negative control."""

import pytest
import torch
from scipy.stats import special_ortho_group

from clouds import anisotropic_clouds, generic_clouds
from geosweep.invariance import assert_representation, groups_of, invariance_error
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.raw import RawCoordinates


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("dim", [2, 3])
def test_translation_invariant_and_centred(dim):
    rep = RawCoordinates()
    points = anisotropic_clouds(dim)
    out = rep(points)
    assert rel_err(rep(points + torch.tensor([10.0, -4.0, 7.0])[:dim]), out) < 1e-12
    assert out.mean(dim=2).abs().max() < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_permutation_equivariant(dim):
    rep = RawCoordinates()
    points = anisotropic_clouds(dim)
    perm = torch.randperm(points.shape[1], generator=torch.Generator().manual_seed(1))
    assert rel_err(rep(points[:, perm]), rep(points)[:, :, perm]) < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_not_rotation_invariant(dim):
    # Negative control: a random rotation must change the output by O(1).
    rep = RawCoordinates()
    points = anisotropic_clouds(dim)
    q = torch.tensor(special_ortho_group.rvs(dim, random_state=3))
    assert rel_err(rep(points @ q.T), rep(points)) > 0.3


def test_registry():
    rep = REPRESENTATIONS.build("raw", {})
    assert isinstance(rep, RawCoordinates)
    assert rep.invariances == {"translation", "permutation"}
    assert not list(rep.parameters())


@pytest.mark.parametrize("dim", [2, 3])
def test_uncentred_passes_coordinates_through_and_declares_no_translation_invariance(dim):
    # TSP's raw input, as Kool et al.'s: the cities where they are, so a translated test set moves them.
    rep = REPRESENTATIONS.build("raw", {"centre": False})
    points = generic_clouds(dim)
    assert torch.equal(rep(points), points.unsqueeze(1))
    assert rep.invariances == {"permutation"} and RawCoordinates().invariances == {"translation", "permutation"}
    errors = assert_representation(rep, points)  # the certificate checks exactly what is declared
    assert set(errors) == set(groups_of(rep.invariances)) == {"permutation"}
    assert invariance_error(lambda x: rep(x), points, "translation") > 0.1
