"""The contract every registered representation keeps, checked for each one automatically."""

import pytest
import torch

from clouds import generic_clouds
from geosweep.invariance import (
    assert_invariant,
    assert_representation,
    groups_of,
    invariance_error,
)
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import SYMMETRIES


@pytest.mark.parametrize("name", REPRESENTATIONS.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_frames_shape_dtype_and_channels(name, dim, dtype):
    rep = REPRESENTATIONS.build(name, {})
    points = torch.randn(5, 33, dim, dtype=dtype, generator=torch.Generator().manual_seed(0))
    frames = rep(points)
    assert frames.ndim == 4 and frames.shape[0] == 5 and frames.shape[2] == 33
    assert frames.shape[3] == rep.out_channels(dim)
    assert frames.dtype == dtype
    assert torch.isfinite(frames).all()


@pytest.mark.parametrize("name", REPRESENTATIONS.names())
def test_declared_invariances_are_known_symmetries(name):
    assert REPRESENTATIONS.build(name, {}).invariances <= SYMMETRIES


@pytest.mark.parametrize("dim", [2, 3])
def test_generic_clouds_are_generic(dim):
    # Guards the premise of the invariance contract: well separated eigenvalues, large third moments.
    x = generic_clouds(dim, torch.float64)
    centred = x - x.mean(dim=1, keepdim=True)
    vals, vecs = torch.linalg.eigh(centred.mT @ centred / x.shape[1])
    assert (vals[:, 1:] / vals[:, :-1]).min() > 1.3  # consecutive eigenvalue ratios
    y = centred @ vecs
    skew = (y**3).mean(dim=1) / vals**1.5
    assert skew.abs().min() > 0.3


@pytest.mark.parametrize("name", REPRESENTATIONS.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_declared_invariances_hold(name, dim, dtype):
    """Each declared group, and only those, is checked (TOLERANCES: 1e-5 float64, 1e-4 float32).

    Runs in eval mode, since a representation may be stochastic in training. With
    F > 1 frames (frame averaging) the frames of g.x are a permutation of those of
    x, so they are compared as an unordered set (Hausdorff distance between the
    frame sets), which is what makes the frame-averaged model invariant. This is
    stronger than comparing the frame mean rep(x).mean(1): for the PCA sign frames
    that mean is identically 0, so it would certify anything. "permutation" is
    checked as equivariance along the point axis.
    """
    rep = REPRESENTATIONS.build(name, {})
    errors = assert_representation(rep, generic_clouds(dim, dtype))
    assert set(errors) == set(groups_of(rep.invariances))


EQUIVARIANT = [name for name in REPRESENTATIONS.names() if REPRESENTATIONS.get(name).equivariances]


def test_raw_and_raw_aug_declare_that_their_frames_turn_with_the_input():
    assert {"raw", "raw_aug"} <= set(EQUIVARIANT)


@pytest.mark.parametrize("name", EQUIVARIANT)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_declared_equivariances_hold(name, dim, dtype):
    """rep(x Q^T) = rep(x) Q^T under each declared group, in eval mode: what hands the group on to a backbone."""
    rep = REPRESENTATIONS.build(name, {})
    assert rep.equivariances <= {"rotation", "reflection"}
    errors = assert_representation(rep, generic_clouds(dim, dtype), "equivariances")
    assert set(errors) == set(groups_of(rep.equivariances))


@pytest.mark.parametrize("dim", [2, 3])
def test_raw_fails_rotation_invariance(dim):
    # Negative control: the checker must see that raw coordinates are not rotation invariant.
    rep = REPRESENTATIONS.build("raw", {})
    points = generic_clouds(dim, torch.float64)
    assert invariance_error(lambda x: rep(x), points, "SO(d)") > 0.1
    with pytest.raises(AssertionError, match=r"SO\(d\)"):
        assert_invariant(lambda x: rep(x), points, "SO(d)")


@pytest.mark.parametrize("name", ["tinv_mds", "fa"])
@pytest.mark.parametrize("scale", ["rms", "top_eig"])
@pytest.mark.parametrize("dim", [2, 3])
def test_scale_normalised_representations_are_scale_invariant(name, scale, dim):
    rep = REPRESENTATIONS.build(name, {"scale": scale})
    assert "scale" in rep.invariances
    errors = assert_representation(rep, generic_clouds(dim, torch.float64))
    assert set(errors) == set(groups_of(rep.invariances))


@pytest.mark.parametrize("name", REPRESENTATIONS.names())
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coordinates_are_rejected_naming_the_representation(name, bad):
    rep = REPRESENTATIONS.build(name, {})
    points = generic_clouds(3, torch.float64)
    points[1, 3, 0] = bad
    for training in (True, False):  # raw_aug takes another path in training mode
        rep.train(training)
        with pytest.raises(ValueError, match=rf"representation '{name}': sample 1: NaN or infinite coordinates"):
            rep(points)
