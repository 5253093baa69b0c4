"""The `tsp` dataset: seeded fixed sets as files, reference tours, transformed variants, registration."""

import numpy as np
import pytest
import torch

from geosweep.data import tsp as tsp_module
from geosweep.data.tours import held_karp, lkh_tours, tour_length
from geosweep.data.tsp import FORMAT_VERSION, VARIANTS, TourSet, TSPData, random_instances, transformed_variants, tsp
from geosweep.random_streams import generator
from geosweep.registry import DATASETS

SMALL = {"num_nodes": 8, "val_size": 6, "test_size": 10}


@pytest.fixture
def small(tmp_path) -> TSPData:
    return tsp(seed=3, **SMALL, data_dir=str(tmp_path))


def lengths_of(coords: np.ndarray, tours: np.ndarray) -> np.ndarray:
    return tour_length(torch.from_numpy(coords.astype(np.float64)), torch.from_numpy(tours)).numpy()


def test_sets_have_the_promised_shapes_and_optimal_reference_tours(small):
    assert small.dim == 2 and small.num_nodes == 8 and small.train_seed == 3
    for tours_set, size in ((small.val, 6), (small.test, 10)):
        assert tours_set.coords.shape == (size, 8, 2) and tours_set.coords.dtype == np.float32
        assert tours_set.ref_tours.dtype == np.int64 and tours_set.ref_lengths.dtype == np.float64
        assert ((tours_set.coords >= 0) & (tours_set.coords < 1)).all()
        np.testing.assert_allclose(tours_set.ref_lengths, lengths_of(tours_set.coords, tours_set.ref_tours))
        optimal = [held_karp(instance)[0] for instance in tours_set.coords]
        np.testing.assert_allclose(tours_set.ref_lengths, optimal, rtol=1e-6)


def test_files_are_named_by_size_and_seed_and_read_back_without_lkh(small, tmp_path, monkeypatch):
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["tsp8_test_seed1234.npz", "tsp8_val_seed4321.npz"]
    written = {path: path.stat().st_mtime_ns for path in tmp_path.iterdir()}

    def no_lkh(*args, **kwargs):
        raise AssertionError("the second build solved again instead of reading the file")

    monkeypatch.setattr(tsp_module, "lkh_tours", no_lkh)
    again = tsp(seed=3, **SMALL, data_dir=str(tmp_path))
    assert {path: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == written
    np.testing.assert_array_equal(again.test.ref_tours, small.test.ref_tours)


def test_fixed_sets_are_regenerated_identically_from_their_seeds(small, tmp_path):
    fresh = tsp(seed=3, **SMALL, data_dir=str(tmp_path / "elsewhere"))
    for name in ("val", "test"):
        for field in ("coords", "ref_tours", "ref_lengths"):
            np.testing.assert_array_equal(getattr(getattr(fresh, name), field), getattr(getattr(small, name), field))
    other = tsp(seed=3, **SMALL, test_seed=99, reference="none", data_dir=str(tmp_path))
    assert not np.allclose(other.test.coords, small.test.coords)
    np.testing.assert_array_equal(other.val.coords, small.val.coords)
    assert (tmp_path / "tsp8_test_seed99.npz").exists()


def test_training_instances_are_fresh_and_follow_the_rng(small):
    first = small.sample_train(np.random.default_rng(7), 5)
    assert first.shape == (5, 8, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(small.sample_train(np.random.default_rng(7), 5), first)
    rng = np.random.default_rng(7)
    assert not np.array_equal(small.sample_train(rng, 5), small.sample_train(rng, 5))


def test_reference_none_skips_tours_and_lkh_adds_them_later(tmp_path):
    plain = tsp(seed=0, **SMALL, reference="none", data_dir=str(tmp_path))
    assert plain.val.ref_tours is None and plain.test.ref_lengths is None
    with np.load(tmp_path / "tsp8_val_seed4321.npz") as stored:
        assert sorted(stored.files) == ["coords", "format_version"]
    solved = tsp(seed=0, **SMALL, reference="lkh", data_dir=str(tmp_path))
    assert solved.val.ref_tours.shape == (6, 8)
    with np.load(tmp_path / "tsp8_val_seed4321.npz") as stored:
        assert {"ref_tours", "ref_lengths"} <= set(stored.files)
    # A larger set without tours leaves the smaller file, and the tours it holds, alone.
    larger = tsp(seed=0, **{**SMALL, "val_size": 9}, reference="none", data_dir=str(tmp_path))
    np.testing.assert_array_equal(larger.val.coords[:6], solved.val.coords)
    with np.load(tmp_path / "tsp8_val_seed4321.npz") as stored:
        assert stored["ref_tours"].shape == (6, 8)


def rewrite(path, **changes):
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays.update(changes)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def swap_two_cities(path):
    with np.load(path) as stored:
        tours = stored["ref_tours"].copy()
    tours[2, 1] = tours[2, 2]
    rewrite(path, ref_tours=tours)


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (lambda path: path.write_bytes(b"not a zip"), "is not a readable .npz file"),
        (lambda path: rewrite(path, coords=None), "lacks coords"),
        (
            lambda path: rewrite(path, format_version=np.array(0)),
            rf"format_version array\(0\), expected {FORMAT_VERSION}",
        ),
        (lambda path: rewrite(path, coords=np.zeros((10, 7, 2), np.float32)), r"expected \(M, 8, 2\) float32"),
        (lambda path: rewrite(path, coords=np.zeros((4, 8, 2), np.float64)), r"expected \(M, 8, 2\) float32"),
        (lambda path: rewrite(path, coords=np.full((10, 8, 2), 0.5, np.float32)), "differ from those seed 1234"),
        (swap_two_cities, "invalid ref_tours \\(instance 2:"),
        (lambda path: rewrite(path, ref_lengths=np.ones(10)), "not the 10 lengths of its ref_tours"),
    ],
)
def test_a_corrupt_or_mismatched_file_is_an_error_naming_it(small, tmp_path, corrupt, expected):
    path = tmp_path / "tsp8_test_seed1234.npz"
    corrupt(path)
    with pytest.raises(ValueError, match=expected) as raised:
        tsp(seed=3, **SMALL, data_dir=str(tmp_path))
    assert str(path) in str(raised.value)


def test_sizes_share_one_file_the_smaller_set_a_prefix_of_the_larger(small, tmp_path, monkeypatch):
    path = tmp_path / "tsp8_test_seed1234.npz"
    solved = []

    def counting_lkh(coords):
        solved.append(len(coords))
        return lkh_tours(coords)

    monkeypatch.setattr(tsp_module, "lkh_tours", counting_lkh)
    fewer = tsp(seed=3, **{**SMALL, "test_size": 4}, data_dir=str(tmp_path))
    np.testing.assert_array_equal(fewer.test.coords, small.test.coords[:4])
    np.testing.assert_array_equal(fewer.test.ref_tours, small.test.ref_tours[:4])
    assert solved == []
    more = tsp(seed=3, **{**SMALL, "test_size": 25}, data_dir=str(tmp_path))
    assert solved == [15]  # only the new instances
    np.testing.assert_array_equal(more.test.coords[:10], small.test.coords)
    np.testing.assert_array_equal(more.test.ref_lengths[:10], small.test.ref_lengths)
    with np.load(path) as stored:
        assert stored["coords"].shape == (25, 8, 2) and stored["ref_tours"].shape == (25, 8)
    fresh = tsp(seed=3, **{**SMALL, "test_size": 25}, data_dir=str(tmp_path / "fresh"))
    np.testing.assert_array_equal(fresh.test.ref_tours, more.test.ref_tours)


def test_data_dir_defaults_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOSWEEP_DATA_DIR", str(tmp_path))
    tsp(seed=0, num_nodes=5, val_size=2, test_size=2, reference="none")
    assert (tmp_path / "tsp5_val_seed4321.npz").exists()


def test_tour_set_rejects_inconsistent_arrays():
    coords = np.zeros((3, 5, 2), np.float32)
    with pytest.raises(ValueError, match="both be given or both be None"):
        TourSet(coords=coords, ref_tours=np.zeros((3, 5), np.int64), ref_lengths=None)
    with pytest.raises(ValueError, match="do not match coords"):
        TourSet(coords=coords, ref_tours=np.zeros((3, 4), np.int64), ref_lengths=np.zeros(3))


def signed_area(coords: np.ndarray) -> np.ndarray:
    """Shoelace area of each instance's cities in index order: its sign is the orientation."""
    x, y = coords[..., 0].astype(np.float64), coords[..., 1].astype(np.float64)
    return 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)


def test_variants_keep_the_optimal_tour_and_scale_its_length(small):
    coords, tours, lengths = small.test.coords, small.test.ref_tours, small.test.ref_lengths
    variants = transformed_variants(coords, seed=5)
    assert tuple(variants) == VARIANTS
    for name, (moved, scale) in variants.items():
        assert moved.shape == coords.shape and moved.dtype == np.float32
        np.testing.assert_allclose(lengths_of(moved, tours), scale * lengths, rtol=1e-4, err_msg=name)
        optimal = [held_karp(instance)[0] for instance in moved]
        np.testing.assert_allclose(optimal, scale * lengths, rtol=1e-4, err_msg=name)
        orientation = np.sign(signed_area(moved)) * np.sign(signed_area(coords))
        assert (orientation == (-1 if name in ("reflected", "all") else 1)).all(), name
    assert variants["scaled"][1] > 1.4 and variants["all"][1] < 0.8
    assert variants["rotated"][1] == variants["reflected"][1] == variants["translated"][1] == 1.0
    for name in ("translated", "all"):
        outside = (variants[name][0] < 0) | (variants[name][0] > 1)
        assert outside.any(axis=2).all(), f"{name}: every city leaves the unit square"


def test_variants_are_seeded(small):
    coords = small.val.coords
    first, again, other = (transformed_variants(coords, seed=s) for s in (5, 5, 6))
    for name in VARIANTS:
        np.testing.assert_array_equal(first[name][0], again[name][0])
        assert first[name][1] == again[name][1]
        assert not np.allclose(first[name][0], other[name][0])


def test_the_translated_variant_does_not_draw_from_the_test_set_stream(tmp_path):
    # With the default seeds a run of seed 1234 transforms the test set of seed 1234: the variants once drew
    # from the very stream that had generated that set.
    size = 16
    data = tsp(seed=1234, num_nodes=8, val_size=2, test_size=size, reference="none", data_dir=str(tmp_path))
    np.testing.assert_array_equal(data.test.coords, random_instances(generator("tsp.test", 1234), size, 8))
    moved, _ = transformed_variants(data.test.coords, seed=data.train_seed)["translated"]
    offset = (moved - data.test.coords)[:, 0].astype(np.float64)  # one offset per instance, its angle drawn first
    first_draws = np.mod(np.arctan2(offset[:, 1], offset[:, 0]), 2 * np.pi) / (2 * np.pi)
    # The draws are read back right (they are the variant's own stream's) ...
    own = generator("tsp.variant", 1234, VARIANTS.index("translated")).random(size)
    np.testing.assert_allclose(first_draws, own, atol=1e-5)
    # ... and are not the test set stream's first draws.
    assert not np.allclose(first_draws, generator("tsp.test", 1234).random(size), atol=1e-2)


def test_registered_and_validated_through_the_registry(tmp_path):
    data = DATASETS.build("tsp", {"num_nodes": 6, "val_size": 2, "test_size": 3, "data_dir": str(tmp_path)}, seed=11)
    assert isinstance(data, TSPData) and data.train_seed == 11 and data.test.ref_tours.shape == (3, 6)
    assert DATASETS.kind("tsp") == "tour"
    with pytest.raises(ValueError, match="argument 'num_nodes'"):
        DATASETS.validate_kwargs("tsp", {"num_nodes": 2})
    with pytest.raises(ValueError, match="argument 'reference'"):
        DATASETS.validate_kwargs("tsp", {"reference": "concorde"})
    with pytest.raises(ValueError, match="argument 'val_size'"):
        DATASETS.validate_kwargs("tsp", {"val_size": 0})
