"""Training augmentation: each transform does what its config says, and which representations ignore the draws."""

import numpy as np
import pytest

from geosweep.config import AugmentationSpec
from geosweep.data.augmentation import augment, invariant_to_training_draws
from geosweep.representations.base import pca_invariances

OFF = AugmentationSpec()


def clouds(count: int = 64, points: int = 32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((count, points, 3)).astype(np.float32)


def spec(**fields) -> AugmentationSpec:
    return AugmentationSpec.model_validate(fields)


def distances(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)


def test_nothing_drawn_leaves_the_clouds_as_they_are():
    x = clouds()
    rng = np.random.default_rng(1)
    out = augment(x, "none", OFF, rng)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x)
    assert rng.random() == np.random.default_rng(1).random()  # and draws nothing


def test_a_rotation_alone_keeps_the_shape_and_z_keeps_heights():
    x = clouds()
    out = augment(x, "z", OFF, np.random.default_rng(1))
    np.testing.assert_allclose(out[..., 2], x[..., 2], atol=1e-6)
    np.testing.assert_allclose(distances(out), distances(x), atol=1e-5)
    assert not np.allclose(out, x, atol=1e-3)


def test_one_scale_per_cloud_scales_every_distance_by_one_factor_in_range():
    x = clouds()
    out = augment(x, "so3", spec(scale={"low": 0.5, "high": 2.0}), np.random.default_rng(1))
    ratio = distances(out)[:, 0, 1:] / distances(x)[:, 0, 1:]
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(ratio.shape[1], axis=1), rtol=1e-5)
    assert ratio.min() >= 0.5 and ratio.max() <= 2.0 and ratio.max() - ratio.min() > 0.5


def test_a_per_axis_scale_stretches_each_axis_by_its_own_factor():
    x = clouds()
    out = augment(x, "none", spec(scale={"low": 2 / 3, "high": 1.5, "per_axis": True}), np.random.default_rng(1))
    factors = out / x  # (B, N, 3): constant along the points, different between axes
    np.testing.assert_allclose(factors, factors[:, :1].repeat(x.shape[1], axis=1), rtol=1e-5)
    assert factors.min() >= 2 / 3 - 1e-6 and factors.max() <= 1.5 + 1e-6
    assert np.abs(factors[:, 0, 0] - factors[:, 0, 1]).max() > 0.1


def test_a_translation_moves_each_cloud_within_range_and_keeps_its_shape():
    x = clouds()
    out = augment(x, "none", spec(translate={"low": -0.2, "high": 0.2}), np.random.default_rng(1))
    offsets = out - x
    np.testing.assert_allclose(offsets, offsets[:, :1].repeat(x.shape[1], axis=1), atol=1e-6)
    assert np.abs(offsets).max() <= 0.2 + 1e-6 and np.abs(offsets).max() > 0.15


def test_jitter_is_clipped_gaussian_noise_on_every_point():
    x = clouds(count=128)
    noise = augment(x, "none", spec(jitter={"sigma": 0.01, "clip": 0.02}), np.random.default_rng(1)) - x
    assert np.abs(noise).max() <= 0.02 + 1e-6
    assert noise.std() == pytest.approx(0.01, rel=0.1)
    assert len(np.unique(noise.round(7))) > 0.9 * noise.size  # fresh noise per point, not per cloud


def test_the_same_stream_gives_the_same_draws():
    x, full = clouds(), spec(scale={"low": 0.8, "high": 1.25}, translate={"low": -0.1, "high": 0.1},
                            jitter={"sigma": 0.01, "clip": 0.05})  # fmt: skip
    first = augment(x, "so3", full, np.random.default_rng(7))
    np.testing.assert_array_equal(first, augment(x, "so3", full, np.random.default_rng(7)))
    assert not np.allclose(first, augment(x, "so3", full, np.random.default_rng(8)))


TINV = pca_invariances(reflection=True, scale=False)  # tinv_mds and fa (o3), and geodesic_mds, by default
TINV_SO3 = pca_invariances(reflection=False, scale=False)  # orientation/group so3: proper rotations only
TINV_SCALED = pca_invariances(reflection=True, scale=True)  # scale: rms or top_eig
RAW = frozenset({"translation", "permutation"})


@pytest.mark.parametrize(
    "invariances, rotation, augmentation, expected",
    [
        (TINV, "z", OFF, True),
        (TINV, "so3", OFF, True),
        (TINV_SO3, "so3", OFF, True),  # the protocols draw proper rotations: SO(d) invariance covers them
        (RAW, "none", OFF, True),
        (RAW, "z", OFF, False),
        (RAW, "none", spec(translate={"low": -0.2, "high": 0.2}), True),
        (TINV, "so3", spec(scale={"low": 0.8, "high": 1.25}), False),  # not scale invariant
        (TINV_SCALED, "so3", spec(scale={"low": 0.8, "high": 1.25}), True),
        (TINV_SCALED, "so3", spec(scale={"low": 0.8, "high": 1.25, "per_axis": True}), False),  # no similarity
        (TINV_SCALED, "none", spec(jitter={"sigma": 0.01, "clip": 0.05}), False),  # noise: no group element
    ],
)
def test_which_declared_invariances_cover_every_training_draw(invariances, rotation, augmentation, expected):
    assert invariant_to_training_draws(invariances, rotation, augmentation) is expected
