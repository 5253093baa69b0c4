"""Tests for the rotation protocols applied to canonical-pose clouds."""

import numpy as np
import pytest

from geosweep.data.rotations import ROTATION_PROTOCOLS, random_rotations, rotate


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_protocol_names():
    assert ROTATION_PROTOCOLS == ("none", "z", "so3")


@pytest.mark.parametrize("protocol", ROTATION_PROTOCOLS)
def test_proper_rotations(protocol):
    r = random_rotations(protocol, 500, rng())
    assert r.shape == (500, 3, 3) and r.dtype == np.float64
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_none_is_identity():
    np.testing.assert_array_equal(random_rotations("none", 4, rng()), np.tile(np.eye(3), (4, 1, 1)))


def test_z_keeps_z_and_covers_angles():
    r = random_rotations("z", 2000, rng())
    np.testing.assert_allclose(r[:, 2], np.tile([0.0, 0.0, 1.0], (2000, 1)), atol=1e-15)
    angle = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    # Uniform angles: every quarter turn gets about a quarter of the draws.
    counts = np.histogram(angle, bins=4, range=(-np.pi, np.pi))[0]
    assert counts.min() > 400
    points = rng(1).standard_normal((2000, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(rotate(points, "z", rng())[..., 2], points[..., 2], atol=1e-6)


def test_so3_is_not_only_about_z():
    r = random_rotations("so3", 2000, rng())
    assert (np.abs(r[:, 2, 2]) < 0.9).mean() > 0.5
    # Haar measure: the mean rotation matrix vanishes and z' = R z is uniform on the sphere.
    assert np.abs(r.mean(axis=0)).max() < 0.05
    assert abs(r[:, 2, 2].mean()) < 0.05


@pytest.mark.parametrize("protocol", ROTATION_PROTOCOLS)
def test_rotate_preserves_distances(protocol):
    points = rng(2).standard_normal((8, 32, 3)).astype(np.float32)
    out = rotate(points, protocol, rng())
    assert out.shape == points.shape and out.dtype == np.float32

    def distances(x):
        return np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)

    np.testing.assert_allclose(distances(out), distances(points), atol=1e-5)


@pytest.mark.parametrize("protocol", ["z", "so3"])
def test_each_sample_gets_its_own_rotation(protocol):
    points = np.repeat(rng(3).standard_normal((1, 32, 3)), 4, axis=0).astype(np.float32)
    out = rotate(points, protocol, rng())
    assert not np.allclose(out[0], out[1])
    np.testing.assert_array_equal(out, rotate(points, protocol, rng()))


def test_unknown_protocol():
    with pytest.raises(ValueError, match="valid choices: none, z, so3"):
        random_rotations("xyz", 3, rng())
    with pytest.raises(ValueError, match="'xyz'"):
        rotate(np.zeros((2, 4, 3), np.float32), "xyz", rng())
