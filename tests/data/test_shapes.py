"""Tests for the generated `shapes` dataset."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from geosweep.data import shapes as shapes_module
from geosweep.data.shapes import CHIRAL_CLASSES, CLASSES, shapes
from geosweep.data.splits import PointCloudSplits
from geosweep.registry import DATASETS

SMALL = {"num_points": 128, "train_per_class": 4, "val_per_class": 2, "test_per_class": 3}


@pytest.fixture(scope="module")
def small() -> PointCloudSplits:
    return shapes(seed=3, **SMALL)


def splits_of(data: PointCloudSplits):
    return {"train": data.train, "val": data.val, "test": data.test}


def test_same_seed_bit_identical(small):
    again = shapes(seed=3, **SMALL)
    for name, split in splits_of(small).items():
        np.testing.assert_array_equal(split.points, splits_of(again)[name].points)
        np.testing.assert_array_equal(split.labels, splits_of(again)[name].labels)


def test_other_seed_differs(small):
    other = shapes(seed=4, **SMALL)
    for name, split in splits_of(small).items():
        assert not np.allclose(split.points, splits_of(other)[name].points)


def test_splits_are_independent_streams(small):
    bigger_val = shapes(seed=3, **{**SMALL, "val_per_class": 5})
    np.testing.assert_array_equal(bigger_val.train.points, small.train.points)
    np.testing.assert_array_equal(bigger_val.test.points, small.test.points)
    assert bigger_val.val.points.shape[0] == 5 * small.num_classes
    # Same seed, different split index: different clouds, not copies.
    assert not np.allclose(small.val.points, small.train.points[: small.val.points.shape[0]])


def test_shapes_dtypes_and_labels(small):
    per_class = {"train": 4, "val": 2, "test": 3}
    for name, split in splits_of(small).items():
        m = per_class[name] * small.num_classes
        assert split.points.shape == (m, 128, 3) and split.points.dtype == np.float32
        assert split.labels.shape == (m,) and split.labels.dtype == np.int64
        np.testing.assert_array_equal(np.bincount(split.labels, minlength=small.num_classes), per_class[name])
        assert np.any(np.diff(split.labels) < 0), f"{name} labels are sorted, not shuffled"


def test_finite_centred_unit_scale(small):
    for split in splits_of(small).values():
        assert np.isfinite(split.points).all()
        assert np.abs(split.points.mean(axis=1)).max() < 0.05
        radius = np.linalg.norm(split.points, axis=2).max(axis=1)
        assert radius.min() > 0.85 and radius.max() < 1.2


def test_class_names(small):
    assert small.num_classes >= 10
    assert len(set(small.class_names)) == small.num_classes
    assert small.class_names == tuple(CLASSES)
    assert set(CHIRAL_CLASSES) <= set(CLASSES)


def test_noise_is_the_requested_std():
    clean = shapes(seed=1, **{**SMALL, "noise": 0.0})
    noisy = shapes(seed=1, **{**SMALL, "noise": 0.05})
    # The noise draw is the last one of each stream, so only the noise differs.
    assert np.std(noisy.train.points - clean.train.points) == pytest.approx(0.05, rel=0.05)


def test_registered_and_built_through_registry():
    assert "shapes" in DATASETS
    data = DATASETS.build("shapes", {"num_points": "32", "train_per_class": 2}, seed=0)
    assert isinstance(data, PointCloudSplits)
    assert data.train.points.shape == (2 * data.num_classes, 32, 3)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("num_points", 0),
        ("num_points", 15),
        ("train_per_class", 0),
        ("val_per_class", 0),
        ("test_per_class", -1),
        ("noise", -0.1),
        ("noise", 1.0),
    ],
)
def test_bad_kwargs_name_the_argument(argument, value):
    # Ranges live in the signature, so config validation rejects them before any generation.
    with pytest.raises(ValueError, match=argument):
        DATASETS.validate_kwargs("shapes", {argument: value})


def test_kwargs_are_typed_and_closed():
    with pytest.raises(ValueError, match="num_points"):
        DATASETS.build("shapes", {"num_points": "many"}, seed=0)
    with pytest.raises(ValueError, match="colour"):
        DATASETS.build("shapes", {"colour": "red"}, seed=0)


# --- the surfaces themselves ---


def test_points_lie_on_the_surface():
    rng = np.random.default_rng(0)
    major, minor = np.array([1.0, 0.8]), np.array([0.3, 0.2])
    torus = shapes_module._surface_points(rng, [shapes_module._torus(major, minor)], 4000)
    ring = np.hypot(torus[..., 0], torus[..., 1]) - major[:, None]
    np.testing.assert_allclose(ring**2 + torus[..., 2] ** 2, np.repeat(minor[:, None] ** 2, 4000, axis=1), atol=1e-9)
    axes = np.array([[1.0, 0.5, 0.3]])
    ellipsoid = shapes_module._surface_points(rng, [shapes_module._ellipsoid(axes)], 4000)
    np.testing.assert_allclose(((ellipsoid / axes[:, None]) ** 2).sum(-1), np.ones((1, 4000)), atol=1e-9)


def test_sampling_is_uniform_by_area():
    rng = np.random.default_rng(0)
    n = 200_000
    # Torus: the outer half (cos theta > 0) holds 1/2 + r / (pi R) of the area.
    major, minor = np.array([1.0]), np.array([0.4])
    torus = shapes_module._surface_points(rng, [shapes_module._torus(major, minor)], n)[0]
    outer = (np.hypot(torus[:, 0], torus[:, 1]) > 1.0).mean()
    assert outer == pytest.approx(0.5 + 0.4 / np.pi, abs=0.005)
    # Closed cylinder: the caps hold r / (r + h) of the area; the lateral points
    # are uniform in height.
    radius, height = np.array([0.5]), np.array([1.5])
    bottom = np.array([[0.0, 0.0, -0.75]])
    parts = [
        shapes_module._tube(bottom, radius, height),
        shapes_module._disk(bottom, radius),
        shapes_module._disk(-bottom, radius),
    ]
    cylinder = shapes_module._surface_points(rng, parts, n)[0]
    on_caps = np.isclose(np.abs(cylinder[:, 2]), 0.75)
    assert on_caps.mean() == pytest.approx(0.5 / 2.0, abs=0.005)
    assert (cylinder[~on_caps, 2] > 0.375).mean() == pytest.approx(0.25, abs=0.005)
    # Oblate spheroid: mapping uniform sphere points would put half of them at |z| > c / 2;
    # area weighting moves them towards the flat poles.
    axes = np.array([[1.0, 1.0, 0.25]])
    ellipsoid = shapes_module._surface_points(rng, [shapes_module._ellipsoid(axes)], n)[0]
    near_pole = (np.abs(ellipsoid[:, 2]) > 0.125).mean()
    assert near_pole == pytest.approx(_spheroid_area_fraction_above(0.5, 0.25), abs=0.005)


def _spheroid_area_fraction_above(u0: float, c: float) -> float:
    """Area fraction of the spheroid with semi-axes (1, 1, c) where |z| > u0 * c.

    With z = c u the band [u, u + du] has area 2 pi sqrt(u^2 + c^2 (1 - u^2)) du.
    """
    u = np.linspace(0.0, 1.0, 100_001)
    element = np.sqrt(u**2 + c**2 * (1 - u**2))
    above = u >= u0
    return float(np.trapezoid(element[above], u[above]) / np.trapezoid(element, u))


# --- chirality: a chiral class's mirror image is a different object ---


def _chamfer(tree_a: cKDTree, a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * (tree_a.query(b)[0].mean() + cKDTree(b).query(a)[0].mean())


def _best_alignment(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Smallest chamfer distance between `a` and `b` under any rotation of `b`.

    A coarse search over random rotations on a subsample of `b`, then ICP
    (nearest neighbours + Kabsch) from the best few starts.
    """
    tree = cKDTree(a)
    starts = Rotation.random(1000, rng=rng).as_matrix()
    sub = b[rng.choice(len(b), 64, replace=False)]
    coarse = tree.query(np.einsum("rij,nj->rni", starts, sub).reshape(-1, 3))[0].reshape(len(starts), -1).mean(1)
    best = np.inf
    for r in starts[np.argsort(coarse)[:6]]:
        for _ in range(20):
            target = a[tree.query(b @ r.T)[1]]
            u, _, vt = np.linalg.svd(target.T @ b)  # Kabsch: the proper rotation best fitting the matches
            r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
        best = min(best, _chamfer(tree, a, b @ r.T))
    return best


def _two_samplings(name: str, seed: int, n: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Two independent noise-free samplings of the same random instance, centred."""
    rng = np.random.default_rng(seed)
    parts = CLASSES[name](rng, 1)
    a, b = (shapes_module._surface_points(rng, parts, n)[0] for _ in range(2))
    return a - a.mean(0), b - b.mean(0)


@pytest.mark.parametrize("name", [*CHIRAL_CLASSES, "table"])
def test_mirror_image_congruent_only_for_achiral(name):
    rng = np.random.default_rng(0)
    a, b = _two_samplings(name, seed=0)
    # Resampling the same surface sets the distance scale of "congruent".
    same = _chamfer(cKDTree(a), a, b)
    # The search must find the rotation when one exists, or a mirror "mismatch" means nothing.
    assert _best_alignment(a, b @ Rotation.random(rng=rng).as_matrix().T, rng) < 1.15 * same
    mirrored = _best_alignment(a, b * np.array([1.0, 1.0, -1.0]), rng)
    if name in CHIRAL_CLASSES:
        assert mirrored > 1.5 * same
    else:
        assert mirrored < 1.15 * same
