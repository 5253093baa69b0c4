"""The `modelnet40` dataset, read from the standard HDF5 release (modelnet40_ply_hdf5_2048).

The release is a directory of `ply_data_train*.h5` / `ply_data_test*.h5`
files, listed in `train_files.txt` / `test_files.txt`, each holding `data`
(B, 2048, 3) float32 and `label` (B, 1) integers; `shape_names.txt` names the
classes. Clouds come in canonical pose: rotation protocols are applied
afterwards (`geosweep.data.rotations`). The directory may be a URI
(`s3://...`): each node then reads its own cached copy (`geosweep.data.sources`).

Every format problem is reported as an error naming the offending file and
what was expected, before any training starts.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import h5py
import numpy as np
from pydantic import AfterValidator, Field

from geosweep import random_streams
from geosweep.data.sources import check_local_dir, check_source, local_copy
from geosweep.data.splits import SPLITS, PointCloudSplits, Split
from geosweep.registry import DATASETS

_PATH_FIELD = "dataset.kwargs.path"
# A URI's scheme, or a local directory's existence, is checked when the config is validated, before Ray
# starts; nothing is fetched then.
_ReleasePath = Annotated[
    str,
    AfterValidator(partial(check_source, field=_PATH_FIELD)),
    AfterValidator(partial(check_local_dir, field=_PATH_FIELD, create=False)),
]


def _listed_files(directory: Path, list_name: str) -> list[Path]:
    """Files named in a list file, resolved by basename inside `directory`.

    The official lists carry a prefix (`data/modelnet40_ply_hdf5_2048/...`)
    from the machine they were written on, so only the basename is trusted.
    """
    list_file = directory / list_name
    if not list_file.is_file():
        raise FileNotFoundError(f"modelnet40: list file {list_file} does not exist")
    names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"modelnet40: list file {list_file} lists no .h5 files")
    files = [directory / Path(name.replace("\\", "/")).name for name in names]
    for name, file in zip(names, files, strict=True):
        if not file.is_file():
            raise FileNotFoundError(f"modelnet40: {list_file} lists {name!r}, but {file} does not exist")
    return files


def _class_names(directory: Path) -> tuple[str, ...] | None:
    """Names from `shape_names.txt`, or None when the file is absent."""
    names_file = directory / "shape_names.txt"
    if not names_file.is_file():
        return None
    names = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
    if not names:
        raise ValueError(f"modelnet40: {names_file} lists no class names")
    return names


def _read_file(file: Path, num_points: int, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one .h5 file.

    Args:
        file: an .h5 file with datasets `data` and `label`.
        num_points: the points each cloud must have at least.
        num_classes: labels must lie in [0, num_classes); None checks only >= 0.

    Returns:
        Points (B, P, 3) float32 and labels (B,) int64.
    """
    try:
        with h5py.File(file, "r") as h5:
            missing = [key for key in ("data", "label") if not isinstance(h5.get(key), h5py.Dataset)]
            if missing:
                raise ValueError(
                    f"modelnet40: {file} has no dataset {' or '.join(map(repr, missing))} "
                    f"(found: {', '.join(h5.keys()) or 'nothing'})"
                )
            points, labels = np.asarray(h5["data"][()]), np.asarray(h5["label"][()])
    except OSError as err:  # h5py reports a non-HDF5 or truncated file as OSError
        raise ValueError(f"modelnet40: {file} is not a readable HDF5 file ({err})") from None

    if not np.issubdtype(points.dtype, np.number) or points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(
            f"modelnet40: {file}: 'data' has shape {points.shape} and dtype {points.dtype}, "
            "expected (B, P, 3) coordinates"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"modelnet40: {file}: 'label' has shape {labels.shape}, expected (B,) or (B, 1)")
    if labels.shape[0] != points.shape[0]:
        raise ValueError(
            f"modelnet40: {file}: 'data' holds {points.shape[0]} clouds but 'label' {labels.shape[0]} labels"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"modelnet40: {file}: 'label' has dtype {labels.dtype}, expected integers")
    if points.shape[1] < num_points:
        raise ValueError(
            f"modelnet40: {file} has {points.shape[1]} points per cloud, fewer than num_points={num_points}"
        )
    high = num_classes if num_classes is not None else np.inf
    bad = np.flatnonzero((labels < 0) | (labels >= high))
    if bad.size:
        expected = (
            f"in [0, {num_classes}) for the {num_classes} classes of shape_names.txt"
            if num_classes is not None
            else "non-negative"
        )
        raise ValueError(f"modelnet40: {file}: sample {bad[0]} has label {labels[bad[0]]}, expected {expected}")
    not_finite = np.flatnonzero(~np.isfinite(points).all(axis=(1, 2)))
    if not_finite.size:
        raise ValueError(f"modelnet40: {file}: sample {not_finite[0]} has NaN or infinite coordinates")
    return points.astype(np.float32, copy=False), labels.astype(np.int64)


def _subsample(points: np.ndarray, num_points: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Keep `num_points` points per cloud: the first ones, or a random subset per cloud."""
    if mode == "first":
        return np.ascontiguousarray(points[:, :num_points])
    # The indices of the num_points smallest of i.i.d. uniform keys are a uniform
    # subset without replacement; argpartition finds them in linear time.
    index = rng.random(points.shape[:2]).argpartition(num_points - 1, axis=1)[:, :num_points]
    return np.take_along_axis(points, index[:, :, None], axis=1)


def _load(
    directory: Path, list_name: str, num_points: int, subsample: str, num_classes: int | None, seed: int, split: str
) -> Split:
    """Concatenate the validated, subsampled clouds of every file in one list file, in list order."""
    # A stream of its own, apart from the validation subset's: changing val_fraction leaves the points alone.
    rng = random_streams.generator("modelnet40.subsample", seed, SPLITS.index(split))
    points, labels = [], []
    for file in _listed_files(directory, list_name):
        file_points, file_labels = _read_file(file, num_points, num_classes)
        # Subsample per file so the full 2048-point arrays never coexist.
        points.append(_subsample(file_points, num_points, subsample, rng))
        labels.append(file_labels)
    return Split(points=np.concatenate(points), labels=np.concatenate(labels))


def _stratified_val(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a validation subset holding `fraction` of each class."""
    mask = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        # Leave at least one cloud of every class in train.
        count = min(round(fraction * members.size), members.size - 1)
        mask[rng.choice(members, size=count, replace=False)] = True
    return mask


def _take(split: Split, index: np.ndarray | slice) -> Split:
    return Split(points=split.points[index], labels=split.labels[index])


@DATASETS.register("modelnet40", kind="classification")
def modelnet40(
    seed: Annotated[int, Field(ge=0)],
    path: _ReleasePath,
    num_points: Annotated[int, Field(ge=16, le=2048)] = 1024,
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1,
    subsample: Literal["first", "random"] = "random",
    max_per_split: Annotated[int, Field(ge=1)] | None = None,
) -> PointCloudSplits:
    """Read ModelNet40 from the HDF5 release in canonical pose.

    Ranges are declared in the signature: the registry checks them when a
    config is validated, before any file is read.

    Args:
        seed: fixes the validation split and the random subsampling.
        path: the directory holding the .h5 files, `train_files.txt`,
            `test_files.txt` and optionally `shape_names.txt`; or a URI of it
            (`s3://`, `gs://`, `file://`, ...), fetched once per node into the
            local cache of `geosweep.data.sources.local_copy`.
        num_points: points kept per cloud, in [16, 2048].
        val_fraction: fraction of each class of the official train files held
            out for validation, in [0, 1).
        subsample: "random" keeps a seeded random subset of each cloud's points
            (without replacement); "first" keeps the first `num_points`, as
            many papers do.
        max_per_split: keep only the first clouds of each split, for quick
            runs (the official files are shuffled, so all classes remain likely).

    Returns:
        Splits with points (M, num_points, 3) float32 and labels (M,) int64:
        train and val from the train files (in file order), test from the test
        files; class_names from shape_names.txt, else `class_0`, `class_1`, ...

    Raises:
        FileNotFoundError: the directory, a list file or a listed file is missing.
        OSError: a URI cannot be listed or read.
        ValueError: an unsupported URI scheme; a file is not HDF5, lacks
            `data`/`label`, has wrong shapes, too few points, labels out of
            range or non-finite coordinates.
    """
    # Every rank builds the dataset in its own Train worker, so each node fetches a URI once, into its own cache.
    directory = local_copy(path, field=_PATH_FIELD).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"modelnet40: directory {directory} does not exist")
    names = _class_names(directory)
    num_classes = None if names is None else len(names)
    train = _load(directory, "train_files.txt", num_points, subsample, num_classes, seed, "train")
    test = _load(directory, "test_files.txt", num_points, subsample, num_classes, seed, "test")
    if names is None:
        names = tuple(f"class_{c}" for c in range(int(max(train.labels.max(), test.labels.max())) + 1))

    in_val = _stratified_val(train.labels, val_fraction, random_streams.generator("modelnet40.val", seed))
    train, val = _take(train, ~in_val), _take(train, in_val)
    if max_per_split is not None:
        train, val, test = (_take(split, slice(max_per_split)) for split in (train, val, test))
    return PointCloudSplits(train=train, val=val, test=test, class_names=names)
