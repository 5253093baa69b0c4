"""learned_canon: a rotation predicted per cloud, exact in general position, finite where it cannot be."""

import numpy as np
import pytest
import torch

from clouds import generic_clouds
from geosweep.config import parse_run_config
from geosweep.data.splits import PointCloudSplits, Split
from geosweep.invariance import invariance_error, sample_transforms
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.canonicalization import rotation_from
from geosweep.tasks.inputs import prepare_inputs


def canonicalizer() -> torch.nn.Module:
    torch.manual_seed(0)
    return REPRESENTATIONS.build("learned_canon", {"widths": (4, 4), "k": 4}).double().eval()


def assert_rotations(frames: torch.Tensor) -> None:
    eye = torch.eye(frames.shape[-1], dtype=frames.dtype).expand_as(frames)
    torch.testing.assert_close(frames.mT @ frames, eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(frames), torch.ones(len(frames), dtype=frames.dtype))


@pytest.mark.parametrize("dim", [2, 3])
def test_gram_schmidt_gives_rotations_that_turn_with_the_vectors(dim):
    vectors = torch.randn(16, 2, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    frames = rotation_from(vectors)
    assert_rotations(frames)
    torch.testing.assert_close(frames[:, :, 0], vectors[:, 0] / vectors[:, 0].norm(dim=-1, keepdim=True))
    for g in sample_transforms("SO(d)", dim, 4, generator=torch.Generator().manual_seed(1)):
        torch.testing.assert_close(rotation_from(vectors @ g.rotation.T), g.rotation @ frames)


@pytest.mark.parametrize(
    "first, second",
    [
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),  # no direction at all
        ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]),  # parallel: the second has no part orthogonal to the first
        ([0.0, 0.0, 1.0], [0.0, 0.0, -5.0]),
    ],
)
def test_degenerate_vectors_give_a_rotation_and_finite_gradients(first, second):
    vectors = torch.tensor([[first, second]], dtype=torch.float64, requires_grad=True)
    frames = rotation_from(vectors)
    assert_rotations(frames.detach())
    (frames * torch.arange(9.0, dtype=torch.float64).view(1, 3, 3)).sum().backward()
    assert torch.isfinite(vectors.grad).all()


def test_clouds_whose_points_coincide_or_lie_on_a_line_stay_finite():
    rep = canonicalizer().train()
    line = torch.linspace(0.0, 1.0, 16, dtype=torch.float64)[:, None] ** 2 * torch.tensor([1.0, 2.0, 3.0])
    points = torch.stack([torch.ones(16, 3, dtype=torch.float64), line]).requires_grad_()
    out = rep(points)
    out.square().sum().backward()
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    assert torch.isfinite(out).all() and torch.isfinite(points.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in rep.parameters())
    # A line with no symmetry still has an equivariant first vector: the output stays invariant.
    assert invariance_error(canonicalizer(), line.unsqueeze(0), "SO(d)") < 1e-6


@pytest.mark.parametrize("dim", [2, 3])
def test_mirror_images_are_told_apart(dim):
    # SO(d) only: a reflected cloud comes out reflected, so chiral shapes keep their handedness.
    rep = canonicalizer()
    assert rep.invariances == {"translation", "rotation", "permutation"}
    assert invariance_error(rep, generic_clouds(dim), "O(d)") > 0.1


def test_its_frames_are_never_cached(tmp_path):
    # Trained with the backbone, so not a function of the points alone: it runs in the model at every step.
    rep = REPRESENTATIONS.build("learned_canon", {})
    assert not rep.deterministic
    config = parse_run_config(
        {
            "dataset": {"name": "shapes"},
            "representation": {"name": "learned_canon"},
            "backbone": {"name": "pointnet"},
            "epochs": 1,
            "cache": {"dir": str(tmp_path / "cache")},
        }
    )
    split = Split(np.random.default_rng(0).standard_normal((4, 16, 3)).astype(np.float32), np.zeros(4, np.int64))
    data = PointCloudSplits(train=split, val=split, test=split, class_names=("a",))
    inputs = prepare_inputs(config, data, rep, rank=0)
    assert inputs.val.shape == (4, 16, 3) and inputs.train.shape == (4, 16, 3)  # points, not (M, F, N, c) frames
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
