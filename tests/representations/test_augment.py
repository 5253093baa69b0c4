"""Tests for raw_aug: centred coordinates, randomly rotated in training mode only."""

import pytest
import torch

from clouds import anisotropic_clouds
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.augment import RawAugmented, random_rotations
from geosweep.representations.raw import RawCoordinates


def applied_rotations(points: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """(B, d, d) R with out = centred points @ R^T, by least squares."""
    centred = points - points.mean(dim=1, keepdim=True)
    return torch.linalg.lstsq(centred, out[:, 0]).solution.mT


@pytest.mark.parametrize("group", ["z", "so3"])
@pytest.mark.parametrize("dim", [2, 3])
def test_training_applies_a_fresh_proper_rotation_per_sample(dim, group):
    rep = RawAugmented(group=group).train()
    points = anisotropic_clouds(dim, b=6, n=50)
    first, second = rep(points), rep(points)
    assert first.shape == (6, 1, 50, dim)
    assert (first - second).flatten(1).norm(dim=1).min() > 1e-3  # every sample differs
    for out in (first, second):
        rot = applied_rotations(points, out)
        assert torch.allclose(rot.mT @ rot, torch.eye(dim, dtype=rot.dtype).expand_as(rot), atol=1e-10)
        assert torch.allclose(torch.linalg.det(rot), torch.ones(6, dtype=rot.dtype))
        assert not torch.allclose(rot[0], rot[1])  # one rotation per sample, not per batch
        if dim == 3 and group == "z":
            assert torch.allclose(rot[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=rot.dtype).expand(6, 3))


@pytest.mark.parametrize("dim", [2, 3])
def test_eval_returns_plain_centred_coordinates(dim):
    points = anisotropic_clouds(dim, b=6, n=50)
    rep = RawAugmented().eval()
    assert torch.equal(rep(points), RawCoordinates()(points))
    assert torch.equal(rep(points), rep(points))


@pytest.mark.parametrize("dim", [2, 3])
def test_rotations_are_haar_in_mean(dim):
    # Haar measure on SO(d) has E[R] = 0; a biased sampler (e.g. QR without the sign
    # fix) would not. 4000 draws: entries' standard error ~ 0.01.
    torch.manual_seed(0)
    rot = random_rotations(4000, dim, "so3", torch.zeros((), dtype=torch.float64))
    assert rot.mean(dim=0).abs().max() < 0.05
    assert torch.allclose(torch.linalg.det(rot), torch.ones(4000, dtype=rot.dtype))


def test_registry_and_flags():
    rep = REPRESENTATIONS.build("raw_aug", {"group": "z"})
    assert isinstance(rep, RawAugmented) and rep.group == "z"
    assert REPRESENTATIONS.build("raw_aug", {}).group == "so3"
    assert rep.invariances == {"translation", "permutation"}
    assert not rep.deterministic
    assert rep.out_channels(2) == 2 and not list(rep.parameters())
    with pytest.raises(ValueError, match="group"):
        REPRESENTATIONS.build("raw_aug", {"group": "o3"})


@pytest.mark.parametrize("dim", [2, 3])
def test_uncentred_turns_each_cloud_in_place_and_is_plain_raw_in_eval(dim):
    points = anisotropic_clouds(dim, b=6, n=50)
    rep = RawAugmented(centre=False).train()
    out = rep(points)[:, 0]
    assert rep.invariances == {"permutation"}
    torch.testing.assert_close(out.mean(dim=1), points.mean(dim=1))  # the centroid stays where it was
    distances = lambda x: torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # noqa: E731
    torch.testing.assert_close(distances(out), distances(points))  # a rigid motion
    assert (out - points).flatten(1).norm(dim=1).min() > 1e-3
    assert torch.equal(rep.eval()(points), RawCoordinates(centre=False)(points))
