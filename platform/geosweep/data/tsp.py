"""The `tsp` dataset: uniform random cities in the unit square, fixed-seed val/test sets with reference tours.

Training instances are drawn fresh every step from the rng the training loop
passes. The validation and test sets are fixed by their seeds and kept as files
named by city count, split and seed (`geosweep_tsp20_test_seed1234.npz`: the
prefix keeps them apart from Kool et al.'s `tsp20_test_seed1234.pkl`, which
holds other instances), holding the coordinates, the LKH reference tours and
their lengths. A missing file is regenerated identically from its seed; a file
that does not match what its seed produces is an error naming the file, never
used. The test set may instead be read from a community file (`test_file`:
Kool et al.'s `.pkl`, a TSPLIB `.tsp`; data/tsp_files.py), its LKH reference
tours solved once and kept beside the generated sets.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
import torch
from pydantic import AfterValidator, Field, PositiveInt

from geosweep import random_streams
from geosweep.data.sources import check_local_dir
from geosweep.data.tours import InvalidTourError, check_tours, lkh_tours, tour_length
from geosweep.data.tsp_files import read_instances
from geosweep.registry import DATASETS

# Bump when the file layout or the instances a seed generates change: older files are then reported, not misread.
# 2: instances drawn from the named random streams "tsp.val" and "tsp.test".
FORMAT_VERSION = 2
VARIANTS = ("rotated", "reflected", "translated", "scaled", "all")
GENERATED_TEST_SIZE = 1024  # test_size's default when the test set is generated
# The set files are written on first use: the directory may be absent, but must be creatable (checked before Ray).
_DataDir = Annotated[str, AfterValidator(partial(check_local_dir, field="dataset.kwargs.data_dir", create=True))]


def _check_test_file(path: str) -> str:
    if Path(path).suffix not in (".pkl", ".tsp") or not Path(path).expanduser().is_file():
        raise ValueError(f"dataset.kwargs.test_file: {path!r} is not a .pkl (Kool et al.) or .tsp (TSPLIB) file")
    return path


_TestFile = Annotated[str, AfterValidator(_check_test_file)]


def random_instances(rng: np.random.Generator, size: int, num_nodes: int) -> np.ndarray:
    """(size, num_nodes, 2) float32 cities, uniform in the unit square."""
    return rng.random((size, num_nodes, 2), dtype=np.float32)


@dataclass(frozen=True)
class TourSet:
    """A fixed set of instances with optional reference tours (None when built with reference="none")."""

    coords: np.ndarray  # (M, n, 2) float32; n may differ from the training instances' (a file's test set)
    ref_tours: np.ndarray | None  # (M, n) int64, each starting at city 0
    ref_lengths: np.ndarray | None  # (M,) float64, the closed lengths of ref_tours

    def __post_init__(self) -> None:
        if self.coords.ndim != 3 or self.coords.shape[2] != 2 or self.coords.dtype != np.float32:
            raise ValueError(f"TourSet.coords must be (M, n, 2) float32, got {self.coords.shape} {self.coords.dtype}")
        if (self.ref_tours is None) != (self.ref_lengths is None):
            raise ValueError("TourSet: ref_tours and ref_lengths must both be given or both be None")
        if self.ref_tours is not None and (
            self.ref_tours.shape != self.coords.shape[:2] or self.ref_lengths.shape != self.coords.shape[:1]
        ):
            raise ValueError(
                f"TourSet: ref_tours {self.ref_tours.shape} and ref_lengths {self.ref_lengths.shape} "
                f"do not match coords {self.coords.shape}"
            )

    def __len__(self) -> int:
        return self.coords.shape[0]


@dataclass(frozen=True)
class TSPData:
    """What the `tsp` dataset builds: fixed val/test sets and a sampler of fresh training instances."""

    kind: ClassVar[str] = "tour"  # configs pair it with the tour task and backbone (Registry.kind)
    num_nodes: int
    val: TourSet
    test: TourSet
    train_seed: int

    @property
    def dim(self) -> int:
        """The cities' dimension: TSP instances are planar."""
        return 2

    def sample_train(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Fresh (size, num_nodes, 2) float32 training instances from `rng` (each rank passes its own)."""
        return random_instances(rng, size, self.num_nodes)


def default_data_dir() -> Path:
    """$GEOSWEEP_DATA_DIR, else ~/.cache/geosweep/tsp."""
    return Path(os.environ.get("GEOSWEEP_DATA_DIR") or Path.home() / ".cache" / "geosweep" / "tsp")


def set_instances(split: str, num_nodes: int, size: int, seed: int) -> np.ndarray:
    """The coordinates of fixed set `split` ("val" or "test"); a smaller size gives a prefix of a larger one.

    Each set has its own named stream, so val and test differ even when given the same seed.
    """
    return random_instances(random_streams.generator(f"tsp.{split}", seed), size, num_nodes)


def set_path(directory: Path, num_nodes: int, split: str, seed: int) -> Path:
    """Where a generated TSP set lives: its file is named by size, split and seed, after geosweep."""
    return directory / f"geosweep_tsp{num_nodes}_{split}_seed{seed}.npz"


def fixed_set(split: str, num_nodes: int, size: int, seed: int, reference: str, directory: Path) -> TourSet:
    """The fixed `split` set for `seed`: read from its file, or generated (and LKH-solved) and written.

    A file under the name geosweep used before (`tsp20_test_seed1234.npz`, the
    same instances) is still read when the new one is absent; what is written
    goes to the new name.

    Raises:
        ValueError: the file exists but is unreadable or does not hold what
            `seed` generates; the message names the file and what was expected.
    """
    path = set_path(directory, num_nodes, split, seed)
    earlier = directory / path.name.removeprefix("geosweep_")
    read_from = earlier if earlier.exists() and not path.exists() else path
    instances = partial(set_instances, split, num_nodes, seed=seed)
    return _cached_set(path, read_from, num_nodes, size, reference, instances, f"seed {seed} generates")


def file_set(source: Path, size: int | None, reference: str, directory: Path) -> TourSet:
    """A test set read from a community file (data/tsp_files.py), with LKH reference tours kept in `directory`.

    The reference tours are solved as for a generated set and kept in
    `lkh_<file name>_<content hash>.npz`, so a changed file is solved afresh.

    Args:
        source: Kool et al.'s `.pkl` or a TSPLIB `.tsp` file.
        size: the first `size` instances; None: all of them.
        reference: "lkh" or "none", as for a generated set.
        directory: where the reference tours are kept.

    Raises:
        ValueError: the file cannot be read, holds fewer than `size` instances,
            or its kept reference file does not match it; naming the file.
    """
    instances = read_instances(source)
    if size is not None and size > len(instances):
        raise ValueError(f"tsp: {source} holds {len(instances)} instances, but test_size asks for {size} (null: all)")
    size = len(instances) if size is None else size
    if reference == "none":
        return TourSet(coords=instances[:size], ref_tours=None, ref_lengths=None)
    path = directory / f"lkh_{source.name}_{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}.npz"
    return _cached_set(path, path, instances.shape[1], size, reference, lambda m: instances[:m], f"{source} holds")


def _cached_set(
    path: Path,
    read_from: Path,
    num_nodes: int,
    size: int,
    reference: str,
    instances: Callable[[int], np.ndarray],
    origin: str,
) -> TourSet:
    """The first `size` of `instances` with their reference tours, solved once and kept in `path`.

    The instances are prefixes of each other (`instances(m)` is the first m),
    so a file of at least `size` instances serves any smaller size, and a larger
    size extends the file, solving only the new instances. A file without
    reference tours (written with reference="none") gains them when they are
    first asked for. `read_from` is read (checked against `instances`, `origin`
    saying where they come from); writes go to `path`.
    """
    found = read_from.exists()
    coords, tours, lengths = _read_checked(read_from, num_nodes, instances, origin) if found else (None, None, None)
    stored = 0 if coords is None else len(coords)
    if reference == "lkh" and (tours is None or len(tours) < size):
        coords = instances(max(size, stored))
        solved = np.empty((0, num_nodes), dtype=np.int64) if tours is None else tours
        tours = np.concatenate([solved, lkh_tours(coords[len(solved) :])])
        lengths = closed_lengths(coords, tours)
        _write_atomically(path, coords, tours, lengths)
    elif stored < size:
        coords = instances(size)
        if not found:  # a smaller file may hold reference tours: leave it for reference="lkh" to extend
            _write_atomically(path, coords, None, None)
    if reference == "none":
        return TourSet(coords=coords[:size], ref_tours=None, ref_lengths=None)
    return TourSet(coords=coords[:size], ref_tours=tours[:size], ref_lengths=lengths[:size])


def closed_lengths(coords: np.ndarray, tours: np.ndarray) -> np.ndarray:
    """(M,) float64 tour lengths of float32 `coords`, computed in float64."""
    return tour_length(torch.from_numpy(coords.astype(np.float64)), torch.from_numpy(tours)).numpy()


def _read_checked(
    path: Path, num_nodes: int, instances: Callable[[int], np.ndarray], origin: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Coordinates, reference tours and lengths (None when absent) stored in `path`, after checking the whole file.

    The coordinates must be the first ones of `instances` (`origin` says whose, for the message).
    """

    def problem(what: str) -> ValueError:
        return ValueError(f"tsp: {path} {what}; delete it to build it again")

    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise problem(f"is not a readable .npz file ({err})") from None
    missing = [key for key in ("format_version", "coords") if key not in stored]
    if missing:
        raise problem(f"lacks {', '.join(missing)} (holds: {', '.join(stored) or 'nothing'})")
    version = stored["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise problem(f"has format_version {version!r}, expected {FORMAT_VERSION}")
    coords = stored["coords"]
    if coords.ndim != 3 or coords.shape[1:] != (num_nodes, 2) or coords.dtype != np.float32:
        raise problem(f"holds coords {coords.shape} {coords.dtype}, expected (M, {num_nodes}, 2) float32")
    if not np.array_equal(coords, instances(len(coords))):
        raise problem(f"holds coords that differ from those {origin}")
    if ("ref_tours" in stored) != ("ref_lengths" in stored):
        raise problem("holds only one of ref_tours and ref_lengths")
    if "ref_tours" not in stored:
        return coords, None, None
    tours, lengths = stored["ref_tours"], stored["ref_lengths"]
    if tours.shape != coords.shape[:2] or tours.dtype != np.int64:
        raise problem(f"holds ref_tours {tours.shape} {tours.dtype}, expected {coords.shape[:2]} int64")
    try:
        check_tours(tours, coords.shape[1])
    except InvalidTourError as err:
        raise problem(f"holds invalid ref_tours ({err})") from None
    if lengths.shape != coords.shape[:1] or not np.allclose(lengths, closed_lengths(coords, tours), rtol=1e-9):
        raise problem(f"holds ref_lengths {lengths.shape} that are not the {coords.shape[0]} lengths of its ref_tours")
    return coords, tours, lengths


def _write_atomically(path: Path, coords: np.ndarray, tours: np.ndarray | None, lengths: np.ndarray | None) -> None:
    # A temp file renamed into place: two workers building the same set never expose a half-written one.
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"format_version": np.array(FORMAT_VERSION), "coords": coords}
    if tours is not None:
        arrays |= {"ref_tours": tours, "ref_lengths": lengths}
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _similarities(rng: np.random.Generator, count: int, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-instance linear maps (count, 2, 2) and offsets (count, 1, 2), and one scale factor, for variant `name`."""
    linear = np.broadcast_to(np.eye(2), (count, 2, 2))
    offset = np.zeros((count, 1, 2))
    if name in ("reflected", "all"):
        # Reflection across a line at a random angle phi through the centroid (det -1).
        two_phi = 2 * rng.uniform(0, np.pi, count)
        c, s = np.cos(two_phi), np.sin(two_phi)
        linear = np.stack([np.stack([c, s], -1), np.stack([s, -c], -1)], -2) @ linear
    if name in ("rotated", "all"):
        theta = rng.uniform(0, 2 * np.pi, count)
        c, s = np.cos(theta), np.sin(theta)
        linear = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2) @ linear
    if name in ("translated", "all"):
        # Offsets of norm 2..5: every city leaves the unit square, where raw-coordinate models were trained.
        angle, radius = rng.uniform(0, 2 * np.pi, count), rng.uniform(2.0, 5.0, count)
        offset = (radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1))[:, None, :]
    # One factor per variant, so the reference lengths scale by a single known number. It is
    # kept away from 1 (a check at 1.05 would prove little): "scaled" grows instances,
    # "all" shrinks them, so every seed tests both directions.
    scale = 1.0
    if name == "scaled":
        scale = rng.uniform(1.5, 3.0)
    elif name == "all":
        scale = rng.uniform(0.5, 0.75)
    return linear, offset, float(scale)


def transformed_variants(coords: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, float]]:
    """Copies of instances under random similarities: the optimal tour stays, its length scales.

    Rotations, reflections and scalings act about each instance's centroid, so
    each variant isolates one transformation; translations move whole instances
    by 2 to 5 units, out of the unit square. Angles, reflection axes and offsets
    are drawn per instance; "all" composes reflection, rotation, scaling and
    translation.

    Args:
        coords: (M, n, 2) instances.
        seed: the same seed gives the same variants (stream "tsp.variant" of it, keyed by the variant's
            index in VARIANTS: never the stream of a fixed set, whatever the seeds).

    Returns:
        For each name in VARIANTS: (M, n, 2) float32 coordinates and the factor
        by which every tour length is multiplied (1.0 for rotated, reflected,
        translated).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise ValueError(f"transformed_variants: coords must have shape (M, n, 2), got {coords.shape}")
    centroid = coords.mean(axis=1, keepdims=True)
    variants = {}
    for index, name in enumerate(VARIANTS):
        rng = random_streams.generator("tsp.variant", seed, index)
        linear, offset, scale = _similarities(rng, coords.shape[0], name)
        moved = scale * (coords - centroid) @ linear.transpose(0, 2, 1) + centroid + offset
        variants[name] = (moved.astype(np.float32), scale)
    return variants


@DATASETS.register("tsp", kind="tour")
def tsp(
    seed: Annotated[int, Field(ge=0)],
    num_nodes: Annotated[int, Field(ge=3)] = 20,
    val_size: PositiveInt = 256,
    test_size: PositiveInt | None = None,
    val_seed: Annotated[int, Field(ge=0)] = 4321,
    test_seed: Annotated[int, Field(ge=0)] = 1234,
    reference: Literal["lkh", "none"] = "lkh",
    data_dir: _DataDir | None = None,
    test_file: _TestFile | None = None,
) -> TSPData:
    """Random Euclidean TSP in the unit square (Kool et al. 2019): fixed val/test sets, fresh training instances.

    Ranges are declared in the signature: the registry checks them when a
    config is validated, before any instance is generated or solved.

    Args:
        seed: the training seed (TSPData.train_seed); the fixed sets have their own.
        num_nodes: cities per instance, >= 3.
        val_size: validation instances. The defaults (256 / 1024) keep a CPU
            run's evaluation short and LKH's first solve of both sets to about
            2.5 s at TSP20 and 25 s at TSP50 (later builds read the files).
        test_size: test instances; None: GENERATED_TEST_SIZE generated ones, or all of `test_file`'s.
        val_seed: seed of the validation set (its file name carries it).
        test_seed: seed of the generated test set.
        reference: "lkh" stores and returns LKH-3 reference tours and lengths
            (optimal up to about 1e-5 at n <= 50); "none" skips them (ref_* None).
        data_dir: where the set files live; None: $GEOSWEEP_DATA_DIR, else
            ~/.cache/geosweep/tsp. A file there that is unreadable or does not
            hold what its seed generates is an error naming it. Sizes may
            differ: a set is a prefix of any larger set of its seed.
        test_file: read the test set from this file instead of generating it, to
            set a gap beside a published table: Kool et al.'s `.pkl` (e.g.
            tsp20_test_seed1234.pkl; uniform in [0, 1]^2, read unchanged) or a
            TSPLIB `.tsp` (EUC_2D, one instance scaled into the unit square; the
            gap is a ratio of lengths, so it is the one at TSPLIB's scale). Its
            reference tours come from the same LKH-3 path, on real-valued
            distances (TSPLIB's published optima round every edge to an integer).
            Its instances may have another city count than `num_nodes`.

    Returns:
        TSPData with float32 val/test coordinates and, for "lkh", int64 tours and float64 lengths.
    """
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    val = fixed_set("val", num_nodes, val_size, val_seed, reference, directory)
    if test_file is None:
        test = fixed_set("test", num_nodes, test_size or GENERATED_TEST_SIZE, test_seed, reference, directory)
    else:
        test = file_set(Path(test_file).expanduser(), test_size, reference, directory)
    return TSPData(num_nodes=num_nodes, val=val, test=test, train_seed=seed)
