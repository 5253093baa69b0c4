"""Tests for the `modelnet40` dataset on small synthetic files in the HDF5 release format."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from geosweep.config import ConfigError, parse_run_config
from geosweep.data.modelnet40 import modelnet40
from geosweep.registry import DATASETS

CLASSES = ("airplane", "bathtub", "bed", "bench")
TRAIN_FILES, TEST_FILES, PER_FILE, POINTS = 3, 2, 10, 64
PREFIX = "data/modelnet40_ply_hdf5_2048/"  # as in the official lists


def write_h5(file: Path, **datasets: np.ndarray) -> None:
    with h5py.File(file, "w") as h5:
        for key, value in datasets.items():
            h5.create_dataset(key, data=value)


def clouds(first_id: int) -> tuple[np.ndarray, np.ndarray]:
    """One file's clouds: x is the point's index and y the cloud's id, so tests can trace both."""
    ids = first_id + np.arange(PER_FILE)
    data = np.zeros((PER_FILE, POINTS, 3), np.float32)
    data[:, :, 0] = np.arange(POINTS)
    data[:, :, 1] = ids[:, None]
    data[:, :, 2] = np.random.default_rng(first_id).standard_normal((PER_FILE, POINTS))
    return data, (ids % len(CLASSES)).astype(np.uint8)[:, None]


def write_release(directory: Path, shape_names: bool = True) -> Path:
    """A release with 3 train files and 2 test files of 10 clouds x 64 points, 4 classes."""
    directory.mkdir(exist_ok=True)
    for split, count, offset in (("train", TRAIN_FILES, 0), ("test", TEST_FILES, 1000)):
        names = [f"ply_data_{split}{i}.h5" for i in range(count)]
        for i, name in enumerate(names):
            data, label = clouds(offset + i * PER_FILE)
            write_h5(directory / name, data=data, label=label)
        (directory / f"{split}_files.txt").write_text("".join(f"{PREFIX}{n}\n" for n in names))
    if shape_names:
        (directory / "shape_names.txt").write_text("\n".join(CLASSES) + "\n")
    return directory


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "modelnet40_ply_hdf5_2048")


def load(path: Path | str, **kwargs):
    return modelnet40(seed=kwargs.pop("seed", 0), path=str(path), **{"num_points": 16, **kwargs})


def cloud_ids(split) -> np.ndarray:
    return split.points[:, 0, 1].astype(int)


def test_shapes_dtypes_and_class_names(release):
    data = load(release, val_fraction=0.25)
    assert data.class_names == CLASSES
    assert data.train.points.shape[0] + data.val.points.shape[0] == TRAIN_FILES * PER_FILE
    assert data.test.points.shape == (TEST_FILES * PER_FILE, 16, 3)
    for split in (data.train, data.val, data.test):
        assert split.points.dtype == np.float32 and split.points.shape[1:] == (16, 3)
        assert split.labels.dtype == np.int64 and split.labels.shape == split.points.shape[:1]
        np.testing.assert_array_equal(split.labels, cloud_ids(split) % len(CLASSES))


def test_class_names_default_without_shape_names(tmp_path):
    data = load(write_release(tmp_path / "release", shape_names=False))
    assert data.class_names == ("class_0", "class_1", "class_2", "class_3")


def test_test_split_is_the_official_test_files_in_order(release):
    np.testing.assert_array_equal(cloud_ids(load(release).test), 1000 + np.arange(TEST_FILES * PER_FILE))


def test_val_is_disjoint_and_stratified(release):
    data = load(release, val_fraction=0.25)
    train, val = set(cloud_ids(data.train)), set(cloud_ids(data.val))
    assert not train & val
    assert train | val == set(range(TRAIN_FILES * PER_FILE))
    # Classes hold 8, 8, 7, 7 train clouds: a quarter of each, rounded.
    np.testing.assert_array_equal(np.bincount(data.val.labels, minlength=4), [2, 2, 2, 2])


def test_val_fraction_zero_gives_empty_val(release):
    data = load(release, val_fraction=0.0)
    assert data.val.points.shape == (0, 16, 3) and data.val.labels.shape == (0,)
    assert data.train.points.shape[0] == TRAIN_FILES * PER_FILE


def test_same_seed_identical_other_seed_differs(release):
    a, b, c = load(release), load(release), load(release, seed=1)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, name).points, getattr(b, name).points)
        np.testing.assert_array_equal(getattr(a, name).labels, getattr(b, name).labels)
    assert set(cloud_ids(a.val)) != set(cloud_ids(c.val))
    assert not np.array_equal(a.test.points, c.test.points)


def test_val_fraction_leaves_subsampling_alone(release):
    a, b = load(release, val_fraction=0.1), load(release, val_fraction=0.5)
    np.testing.assert_array_equal(a.test.points, b.test.points)


def test_first_keeps_the_first_points(release):
    data = load(release, subsample="first")
    np.testing.assert_array_equal(data.test.points[:, :, 0], np.tile(np.arange(16), (TEST_FILES * PER_FILE, 1)))


def test_random_keeps_distinct_points_differing_per_cloud(release):
    points = load(release, subsample="random").test.points
    index = points[:, :, 0].astype(int)
    assert all(np.unique(row).size == 16 for row in index)  # without replacement
    assert not np.array_equal(index[0], index[1])
    assert not np.array_equal(index[0], np.arange(16))
    # The kept points are the file's own points, coordinates intact.
    original, _ = clouds(1000)
    np.testing.assert_array_equal(points[0], original[0, index[0]])


def test_max_per_split(release):
    data = load(release, max_per_split=3, val_fraction=0.5)
    assert [s.points.shape[0] for s in (data.train, data.val, data.test)] == [3, 3, 3]


def test_registry_build_and_validation(release):
    data = DATASETS.build("modelnet40", {"path": str(release), "num_points": 32}, seed=0)
    assert data.train.points.shape[1:] == (32, 3)
    assert "modelnet40" in DATASETS.names()
    with pytest.raises(ValueError, match="num_points"):
        DATASETS.validate_kwargs("modelnet40", {"path": str(release), "num_points": 4096})
    with pytest.raises(ValueError, match="val_fraction"):
        DATASETS.validate_kwargs("modelnet40", {"path": str(release), "val_fraction": 1.0})
    with pytest.raises(ValueError, match="subsample"):
        DATASETS.validate_kwargs("modelnet40", {"path": str(release), "subsample": "fps"})
    with pytest.raises(ValueError, match="path"):
        DATASETS.validate_kwargs("modelnet40", {})


def test_file_uri_gives_the_same_arrays_as_the_path(release, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOSWEEP_DATA_CACHE_DIR", str(tmp_path / "cache"))
    from_path, from_uri = load(release), load(release.as_uri())
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(from_uri, name).points, getattr(from_path, name).points)
        np.testing.assert_array_equal(getattr(from_uri, name).labels, getattr(from_path, name).labels)
    assert from_uri.class_names == from_path.class_names
    assert len(list((tmp_path / "cache").glob("modelnet40_ply_hdf5_2048-*/ply_data_train0.h5"))) == 1


def test_unsupported_uri_scheme_fails_config_validation():
    raw = {
        "dataset": {"name": "modelnet40", "kwargs": {"path": "s3x://bucket/x"}},
        "representation": {"name": "raw"},
        "backbone": {"name": "pointnet"},
        "epochs": 1,
    }
    with pytest.raises(ConfigError, match=r"dataset\.kwargs\.path: 's3x://bucket/x': unsupported URI scheme 's3x'"):
        parse_run_config(raw)
    raw["dataset"]["kwargs"]["path"] = "s3://bucket/x"  # checked by its scheme alone: nothing is fetched
    assert parse_run_config(raw).dataset.kwargs["path"] == "s3://bucket/x"


# --- errors: each names the file and what was expected ---


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"directory {tmp_path / 'absent'} does not exist"):
        load(tmp_path / "absent")


def test_missing_list_file(release):
    (release / "test_files.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list file .*test_files.txt does not exist"):
        load(release)


def test_empty_list_file(release):
    (release / "train_files.txt").write_text("\n")
    with pytest.raises(ValueError, match="train_files.txt lists no .h5 files"):
        load(release)


def test_listed_file_missing(release):
    (release / "ply_data_train1.h5").unlink()
    with pytest.raises(FileNotFoundError, match="train_files.txt lists .*ply_data_train1.h5.* does not exist"):
        load(release)


def test_corrupt_file(release):
    (release / "ply_data_test1.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="ply_data_test1.h5 is not a readable HDF5 file"):
        load(release)


@pytest.mark.parametrize("key", ["data", "label"])
def test_missing_dataset(release, key):
    data, label = clouds(0)
    datasets = {"data": data, "label": label, "normal": data}
    del datasets[key]
    write_h5(release / "ply_data_train0.h5", **datasets)
    with pytest.raises(ValueError, match=f"ply_data_train0.h5 has no dataset '{key}' .*found: "):
        load(release)


@pytest.mark.parametrize(
    "data_shape, label_shape, expected",
    [
        ((PER_FILE, POINTS, 2), (PER_FILE, 1), r"'data' has shape \(10, 64, 2\).*expected \(B, P, 3\)"),
        ((PER_FILE, POINTS * 3), (PER_FILE, 1), r"'data' has shape \(10, 192\).*expected \(B, P, 3\)"),
        ((PER_FILE, POINTS, 3), (PER_FILE, 2), r"'label' has shape \(10, 2\), expected \(B,\) or \(B, 1\)"),
        ((PER_FILE, POINTS, 3), (PER_FILE - 1,), "'data' holds 10 clouds but 'label' 9 labels"),
    ],
)
def test_wrong_shapes(release, data_shape, label_shape, expected):
    data, label = np.zeros(data_shape, np.float32), np.zeros(label_shape, np.uint8)
    write_h5(release / "ply_data_train2.h5", data=data, label=label)
    with pytest.raises(ValueError, match=f"ply_data_train2.h5: {expected}"):
        load(release)


def test_1d_labels_are_accepted(release):
    data, label = clouds(0)
    write_h5(release / "ply_data_train0.h5", data=data, label=label[:, 0].astype(np.int64))
    assert load(release, val_fraction=0.0).train.labels.shape == (TRAIN_FILES * PER_FILE,)


def test_float_labels(release):
    data, label = clouds(0)
    write_h5(release / "ply_data_train0.h5", data=data, label=label.astype(np.float32))
    with pytest.raises(ValueError, match="ply_data_train0.h5: 'label' has dtype float32, expected integers"):
        load(release)


def test_too_few_points(release):
    with pytest.raises(ValueError, match="ply_data_train0.h5 has 64 points per cloud, fewer than num_points=128"):
        load(release, num_points=128)


def test_label_out_of_range(release):
    data, label = clouds(1000)
    label[3] = len(CLASSES)
    write_h5(release / "ply_data_test0.h5", data=data, label=label)
    with pytest.raises(ValueError, match=r"ply_data_test0.h5: sample 3 has label 4, expected in \[0, 4\)"):
        load(release)


def test_negative_label_without_shape_names(tmp_path):
    release = write_release(tmp_path / "release", shape_names=False)
    data, label = clouds(0)
    write_h5(release / "ply_data_train1.h5", data=data, label=label.astype(np.int64) - 5)
    with pytest.raises(ValueError, match="ply_data_train1.h5: sample 0 has label -5, expected non-negative"):
        load(release)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_coordinates(release, bad):
    data, label = clouds(10)
    data[7, 40, 2] = bad  # past the first num_points: checked even where "first" would drop it
    write_h5(release / "ply_data_train1.h5", data=data, label=label)
    with pytest.raises(ValueError, match="ply_data_train1.h5: sample 7 has NaN or infinite coordinates"):
        load(release, subsample="first")
