"""Tests for the fa (Frame Averaging, PCA frame) representation against METHODS.md section 2."""

import pytest
import torch
from test_mds import isometry, rel_err

from clouds import generic_clouds
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.frames import FrameAveraging

FRAME_COUNTS = {("o3", 3): 8, ("so3", 3): 4, ("o3", 2): 4, ("so3", 2): 2}


def frame_rotations(points: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(B, F, d, d) matrices R with frames[:, f] = centred points @ R, by least squares."""
    centred = (points - points.mean(dim=1, keepdim=True)).unsqueeze(1).expand_as(frames)
    return torch.linalg.lstsq(centred, frames).solution


def averaged(frames: torch.Tensor) -> torch.Tensor:
    """A fixed generic backbone, pooled over points, averaged over frames: (B, F, N, d) -> (B, 5).

    It is permutation invariant (mean over points) but NOT rotation invariant.
    """
    gen = torch.Generator().manual_seed(0)
    w1 = torch.randn(frames.shape[-1], 16, generator=gen, dtype=frames.dtype)
    w2 = torch.randn(16, 5, generator=gen, dtype=frames.dtype)
    per_frame = torch.tanh(frames @ w1 + 0.3).mean(dim=2) @ w2
    return per_frame.mean(dim=1)


@pytest.mark.parametrize("group", ["o3", "so3"])
@pytest.mark.parametrize("dim", [2, 3])
def test_frame_elements_are_the_sign_flips_of_the_principal_axes(dim, group):
    points = generic_clouds(dim)
    frames = FrameAveraging(group=group)(points)
    count = FRAME_COUNTS[(group, dim)]
    assert frames.shape == (4, count, 64, dim)
    rot = frame_rotations(points, frames)
    eye = torch.eye(dim, dtype=rot.dtype)
    assert torch.allclose(rot.mT @ rot, eye.expand_as(rot), atol=1e-10)
    dets = torch.linalg.det(rot)
    if group == "so3":
        assert torch.allclose(dets, torch.ones_like(dets))
    else:
        assert ((dets > 0).sum(dim=1) == count // 2).all()
    # All elements differ, and differ from one another only by column signs.
    first = frames[:, :1]
    ratio = (frames * first).sum(dim=2) / (first * first).sum(dim=2)  # (B, F, d)
    assert torch.allclose(ratio.abs(), torch.ones_like(ratio))
    assert len({tuple(r) for r in ratio[0].round().tolist()}) == count


@pytest.mark.parametrize("dim", [2, 3])
def test_frame_average_is_invariant_for_o3(dim):
    rep = FrameAveraging()
    points = generic_clouds(dim)
    reference = averaged(rep(points))
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    for det in (1, -1):
        q, t = isometry(dim, det, seed=11)
        assert rel_err(averaged(rep(points[:, perm] @ q.T + t)), reference) < 1e-10
    # The test has teeth: the same backbone on raw centred coordinates is not invariant.
    centred = (points - points.mean(dim=1, keepdim=True)).unsqueeze(1)
    assert rel_err(averaged(centred @ q.T), averaged(centred)) > 0.01


@pytest.mark.parametrize("dim", [2, 3])
def test_frame_average_so3_is_rotation_invariant_not_reflection_invariant(dim):
    rep = FrameAveraging(group="so3")
    points = generic_clouds(dim)
    reference = averaged(rep(points))
    q, t = isometry(dim, 1, seed=12)
    assert rel_err(averaged(rep(points @ q.T + t)), reference) < 1e-10
    q, t = isometry(dim, -1, seed=12)
    assert rel_err(averaged(rep(points @ q.T + t)), reference) > 1e-3


def test_frame_average_is_immune_to_sign_ambiguity():
    # X and -X: every third moment is 0, so a single moment-fixed frame is arbitrary;
    # averaging over all sign flips is still exact (the eigengaps are fine).
    half = generic_clouds(3, b=2, n=32)
    half = half - half.mean(dim=1, keepdim=True)
    points = torch.cat([half, -half], dim=1)
    rep = FrameAveraging()
    q, t = isometry(3, -1, seed=4)
    assert rel_err(averaged(rep(points @ q.T + t)), averaged(rep(points))) < 1e-10


@pytest.mark.parametrize("group", ["o3", "so3"])
@pytest.mark.parametrize("dim", [2, 3])
def test_stochastic_picks_one_element_in_training_all_in_eval(dim, group):
    rep = FrameAveraging(group=group, stochastic=True)
    assert not rep.deterministic and FrameAveraging().deterministic
    points = generic_clouds(dim, b=16)
    all_frames = rep.eval()(points)
    assert all_frames.shape[1] == FRAME_COUNTS[(group, dim)]
    rep.train()
    torch.manual_seed(0)
    picks = []
    for _ in range(4):
        one = rep(points)
        assert one.shape == (16, 1, 64, dim)
        # Each sample's single frame is one of its eval-mode frames.
        match = (all_frames - one).flatten(2).abs().amax(dim=2) < 1e-12  # (B, F)
        assert (match.sum(dim=1) == 1).all()
        picks.append(match.int().argmax(dim=1))
    picks = torch.stack(picks)
    assert len(picks.unique()) > 1  # different elements across samples and steps


def test_deterministic_mode_ignores_training_flag():
    rep = FrameAveraging()
    points = generic_clouds(3)
    assert torch.equal(rep.train()(points), rep.eval()(points))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_permutation_equivariant_and_dtype(dtype):
    rep = FrameAveraging()
    points = generic_clouds(3, dtype=dtype)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(2))
    out = rep(points)
    assert out.dtype == dtype
    assert rel_err(rep(points[:, perm]).double(), out[:, :, perm].double()) < 1e-6


def test_registry_and_declared_invariances():
    rep = REPRESENTATIONS.build("fa", {"group": "so3", "stochastic": True})
    assert isinstance(rep, FrameAveraging) and rep.stochastic and rep.group == "so3"
    assert rep.invariances == {"translation", "rotation", "permutation"}
    assert REPRESENTATIONS.build("fa", {}).invariances == {"translation", "rotation", "reflection", "permutation"}
    assert rep.out_channels(3) == 3 and not list(rep.parameters())
    with pytest.raises(ValueError, match="group"):
        REPRESENTATIONS.build("fa", {"group": "z"})
