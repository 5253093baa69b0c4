"""The `tsp` dataset: seeded fixed sets as files, reference tours, community test set files, variants, registration."""

import os
import pickle

import numpy as np
import pytest
import torch

from geosweep.data import tsp as tsp_module
from geosweep.data.tours import held_karp, lkh_tours, tour_length
from geosweep.data.tsp import FORMAT_VERSION, VARIANTS, TourSet, TSPData, random_instances, transformed_variants, tsp
from geosweep.data.tsp_files import read_instances
from geosweep.random_streams import generator
from geosweep.registry import DATASETS
from geosweep.tasks.tsp import TSP, same_tours

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
    assert names == ["geosweep_tsp8_test_seed1234.npz", "geosweep_tsp8_val_seed4321.npz"]
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
    assert (tmp_path / "geosweep_tsp8_test_seed99.npz").exists()


def test_training_instances_are_fresh_and_follow_the_rng(small):
    first = small.sample_train(np.random.default_rng(7), 5)
    assert first.shape == (5, 8, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(small.sample_train(np.random.default_rng(7), 5), first)
    rng = np.random.default_rng(7)
    assert not np.array_equal(small.sample_train(rng, 5), small.sample_train(rng, 5))


def test_reference_none_skips_tours_and_lkh_adds_them_later(tmp_path):
    plain = tsp(seed=0, **SMALL, reference="none", data_dir=str(tmp_path))
    assert plain.val.ref_tours is None and plain.test.ref_lengths is None
    with np.load(tmp_path / "geosweep_tsp8_val_seed4321.npz") as stored:
        assert sorted(stored.files) == ["coords", "format_version"]
    solved = tsp(seed=0, **SMALL, reference="lkh", data_dir=str(tmp_path))
    assert solved.val.ref_tours.shape == (6, 8)
    with np.load(tmp_path / "geosweep_tsp8_val_seed4321.npz") as stored:
        assert {"ref_tours", "ref_lengths"} <= set(stored.files)
    # A larger set without tours leaves the smaller file, and the tours it holds, alone.
    larger = tsp(seed=0, **{**SMALL, "val_size": 9}, reference="none", data_dir=str(tmp_path))
    np.testing.assert_array_equal(larger.val.coords[:6], solved.val.coords)
    with np.load(tmp_path / "geosweep_tsp8_val_seed4321.npz") as stored:
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
    path = tmp_path / "geosweep_tsp8_test_seed1234.npz"
    corrupt(path)
    with pytest.raises(ValueError, match=expected) as raised:
        tsp(seed=3, **SMALL, data_dir=str(tmp_path))
    assert str(path) in str(raised.value)


def test_sizes_share_one_file_the_smaller_set_a_prefix_of_the_larger(small, tmp_path, monkeypatch):
    path = tmp_path / "geosweep_tsp8_test_seed1234.npz"
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
    assert (tmp_path / "geosweep_tsp5_val_seed4321.npz").exists()


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


def test_a_set_under_the_name_geosweep_used_before_is_still_read(small, tmp_path, monkeypatch):
    # The old names (tsp8_test_seed1234.npz) were Kool et al.'s file names with another suffix and other instances.
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.removeprefix("geosweep_"))
    monkeypatch.setattr(tsp_module, "lkh_tours", lambda *args: pytest.fail("solved instead of reading the old file"))
    again = tsp(seed=3, **SMALL, data_dir=str(tmp_path))
    np.testing.assert_array_equal(again.test.ref_tours, small.test.ref_tours)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tsp8_test_seed1234.npz", "tsp8_val_seed4321.npz"]


def write_kool_pickle(path, instances) -> None:
    """As attention-learn-to-route's generate_data.py writes a test set: a pickled list of lists of [x, y]."""
    with open(path, "wb") as file:
        pickle.dump(instances, file, pickle.HIGHEST_PROTOCOL)


def test_kool_et_al_pickles_are_a_test_set_solved_once_by_lkh(tmp_path, monkeypatch):
    instances = np.random.default_rng(0).random((5, 8, 2))
    source = tmp_path / "tsp8_test_seed1234.pkl"
    write_kool_pickle(source, instances.tolist())
    data = tsp(seed=0, num_nodes=6, val_size=2, test_file=str(source), data_dir=str(tmp_path / "data"))
    np.testing.assert_array_equal(data.test.coords, instances.astype(np.float32))
    assert data.val.coords.shape == (2, 6, 2)  # training and validation keep num_nodes
    optimal = [held_karp(instance)[0] for instance in data.test.coords]
    np.testing.assert_allclose(data.test.ref_lengths, optimal, rtol=1e-6)
    [kept] = (tmp_path / "data").glob("lkh_tsp8_test_seed1234.pkl_*.npz")

    def no_lkh(*args):
        raise AssertionError("solved again instead of reading")

    monkeypatch.setattr(tsp_module, "lkh_tours", no_lkh)
    first = tsp(seed=0, num_nodes=6, val_size=2, test_size=3, test_file=str(source), data_dir=str(tmp_path / "data"))
    np.testing.assert_array_equal(first.test.ref_tours, data.test.ref_tours[:3])
    write_kool_pickle(source, np.asarray(instances, dtype=np.float32))  # a numpy array is read too
    with pytest.raises(AssertionError, match="solved again"):  # other bytes: a new reference file
        tsp(seed=0, num_nodes=6, val_size=2, test_file=str(source), data_dir=str(tmp_path / "data"))
    with pytest.raises(ValueError, match=rf"{source} holds 5 instances, but test_size asks for 6"):
        tsp(seed=0, num_nodes=6, val_size=2, test_size=6, test_file=str(source), reference="none")


class RunsCode:
    """What a malicious pickle holds: unpickling it would delete `path`."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return os.remove, (str(self.path),)


@pytest.mark.parametrize(
    "content, expected",
    [
        ([[[0.1, 0.2], [0.3, 0.4]]], r"shape \(1, 2, 2\), expected \(instances, n >= 3, 2\)"),
        ([[[0.1, 0.2], [0.3, 0.4], [0.5, 1.5]]], r"outside \[0, 1\]"),
        ([[[0.1, 0.2], [0.3, 0.4], [0.5]]], "not a pickled list of TSP instances"),
        ({"loc": [[0.1, 0.2]]}, "not a pickled list of TSP instances"),
    ],
)
def test_a_foreign_pickle_is_an_error_naming_it(tmp_path, content, expected):
    source = tmp_path / "test.pkl"
    write_kool_pickle(source, content)
    with pytest.raises(ValueError, match=expected) as raised:
        read_instances(source)
    assert str(source) in str(raised.value)


def test_a_pickle_never_runs_code(tmp_path):
    victim, source = tmp_path / "victim", tmp_path / "evil.pkl"
    victim.touch()
    write_kool_pickle(source, [RunsCode(victim)])
    with pytest.raises(ValueError, match=r"refers to (posix|os)\.(remove|unlink); only lists, numbers and numpy"):
        read_instances(source)
    assert victim.exists()


BERLIN_LIKE = """NAME : tiny6
COMMENT : six cities, in TSPLIB units: 400 wide, 200 high
TYPE : TSP
DIMENSION : 6
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
2 500 100
1 100 100
3 500 300
4 100 300
5 300 120
6 300 280.5
EOF
"""


def test_a_tsplib_instance_is_scaled_into_the_unit_square_and_keeps_its_gap(tmp_path):
    source = tmp_path / "tiny6.tsp"
    source.write_text(BERLIN_LIKE)
    original = np.array([[100, 100], [500, 100], [500, 300], [100, 300], [300, 120], [300, 280.5]])  # by id
    data = tsp(seed=0, num_nodes=8, val_size=2, test_file=str(source), data_dir=str(tmp_path / "data"))
    coords = data.test.coords
    assert coords.shape == (1, 6, 2) and coords.min() == 0.0 and coords.max() == 1.0  # the longer side spans [0, 1]
    np.testing.assert_allclose(coords[0], (original - [100, 100]) / 400, rtol=1e-6)  # aspect ratio kept
    # One factor scales every tour: the reference is the optimal tour at TSPLIB's scale, and a gap is scale-free.
    length, tour = held_karp(original)
    assert same_tours(torch.from_numpy(data.test.ref_tours), torch.from_numpy(tour[None])).all()
    np.testing.assert_allclose(data.test.ref_lengths[0] * 400, length, rtol=1e-6)
    detour = np.array([0, 2, 1, 3, 4, 5])
    at_tsplib_scale = lengths_of(original[None], detour[None])[0] / length
    policy_scale = TSP.gap_percent(
        torch.from_numpy(lengths_of(coords, detour[None])), torch.from_numpy(data.test.ref_lengths)
    )
    assert policy_scale.item() == pytest.approx(100 * (at_tsplib_scale - 1), rel=1e-5)


@pytest.mark.parametrize(
    "change, expected",
    [
        (("EUC_2D", "GEO"), "EDGE_WEIGHT_TYPE 'GEO'"),
        (("TYPE : TSP", "TYPE : ATSP"), "TYPE 'ATSP'"),
        (("DIMENSION : 6", "DIMENSION : 7"), "NODE_COORD_SECTION has 6 lines, DIMENSION says 7"),
        (("6 300 280.5", "7 300 280.5"), r"ids 1\.\.6"),
        (("5 300 120", "5 300"), "'id x y'"),
        (("NODE_COORD_SECTION", "EDGE_WEIGHT_SECTION"), "neither 'KEY : value' nor NODE_COORD_SECTION"),
    ],
)
def test_a_tsplib_file_other_than_euc_2d_coordinates_is_an_error_naming_it(tmp_path, change, expected):
    source = tmp_path / "tiny6.tsp"
    source.write_text(BERLIN_LIKE.replace(*change))
    with pytest.raises(ValueError, match=expected) as raised:
        read_instances(source)
    assert str(source) in str(raised.value)


def test_test_file_is_checked_when_the_config_is_validated(tmp_path):
    with pytest.raises(ValueError, match=r"argument 'test_file'.*not a \.pkl \(Kool et al\.\) or \.tsp"):
        DATASETS.validate_kwargs("tsp", {"test_file": str(tmp_path / "missing.pkl")})
    (tmp_path / "set.npz").touch()
    with pytest.raises(ValueError, match="argument 'test_file'"):
        DATASETS.validate_kwargs("tsp", {"test_file": str(tmp_path / "set.npz")})
