"""The community's TSP test sets, read as (M, n, 2) float32 instances: Kool et al.'s `.pkl` and TSPLIB's `.tsp`.

Kool et al. (attention-learn-to-route, generate_data.py) pickle a list of
instances, each a list of n [x, y] pairs uniform in [0, 1]^2, e.g.
`tsp20_test_seed1234.pkl`; they are read unchanged. A TSPLIB file holds one
instance in its own units (TYPE TSP, EDGE_WEIGHT_TYPE EUC_2D); it is shifted
and scaled into the unit square, keeping its aspect ratio, since the policy
was trained there. A similarity leaves the optimal tour unchanged and scales
every tour length by one factor, so the gap (a ratio of lengths) is the one
at the original scale. Anything else is an error naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

# The only globals a pickle of plain lists, floats and numpy arrays needs (numpy 1 and 2 module names;
# protocol 5 rebuilds arrays with _frombuffer). None of them can call anything else.
_NUMPY_GLOBALS = {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles lists, numbers and numpy arrays only: a test set file can never run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}; only lists, numbers and numpy arrays are read")
        return super().find_class(module, name)


def read_instances(path: Path) -> np.ndarray:
    """The instances of a `.pkl` (Kool et al.) or `.tsp` (TSPLIB) file, in the unit square.

    Args:
        path: the file; its suffix says the format.

    Returns:
        (M, n, 2) float32 coordinates, n >= 3, finite.

    Raises:
        ValueError: another suffix, or a file that does not hold what its format says; the message names it.
    """
    readers = {".pkl": read_kool_pickle, ".tsp": read_tsplib}
    if path.suffix not in readers:
        raise ValueError(f"tsp: {path}: expected a .pkl (Kool et al.) or .tsp (TSPLIB) test set file")
    return readers[path.suffix](path)


def read_kool_pickle(path: Path) -> np.ndarray:
    """Kool et al.'s pickled list of instances (each n [x, y] pairs in [0, 1]^2), as (M, n, 2) float32."""
    try:
        with open(path, "rb") as file:
            data = _PlainUnpickler(file).load()
        coords = np.asarray(data, dtype=np.float64)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise ValueError(f"tsp: {path} is not a pickled list of TSP instances ({err})") from None
    if coords.ndim != 3 or coords.shape[0] == 0 or coords.shape[1] < 3 or coords.shape[2] != 2:
        raise ValueError(f"tsp: {path} holds an array of shape {coords.shape}, expected (instances, n >= 3, 2)")
    if not np.isfinite(coords).all() or coords.min() < 0 or coords.max() > 1:
        raise ValueError(f"tsp: {path} holds coordinates outside [0, 1] (Kool et al.'s sets are in the unit square)")
    return coords.astype(np.float32)


def read_tsplib(path: Path) -> np.ndarray:
    """A TSPLIB EUC_2D instance, shifted and scaled so its larger side spans [0, 1]: (1, n, 2) float32.

    The specification part is `KEY : value` lines; the data part is a
    NODE_COORD_SECTION of DIMENSION lines `id x y` with the ids 1..n in any
    order, optionally followed by EOF.
    """
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"tsp: {path} cannot be read as a TSPLIB file ({err})") from None

    def problem(what: str) -> ValueError:
        return ValueError(f"tsp: {path}: {what} (a TSPLIB file of TYPE TSP, EDGE_WEIGHT_TYPE EUC_2D is expected)")

    spec: dict[str, str] = {}
    rows = iter(lines)
    for line in rows:
        if line == "NODE_COORD_SECTION":
            break
        if line:
            key, sep, value = line.partition(":")
            if not sep:
                raise problem(f"line {line!r} is neither 'KEY : value' nor NODE_COORD_SECTION")
            spec[key.strip()] = value.strip()
    else:
        raise problem("no NODE_COORD_SECTION")
    if spec.get("TYPE") != "TSP" or spec.get("EDGE_WEIGHT_TYPE") != "EUC_2D":
        raise problem(f"TYPE {spec.get('TYPE')!r}, EDGE_WEIGHT_TYPE {spec.get('EDGE_WEIGHT_TYPE')!r}")
    if not spec.get("DIMENSION", "").isdigit() or int(spec["DIMENSION"]) < 3:
        raise problem(f"DIMENSION {spec.get('DIMENSION')!r} is not a whole number >= 3")
    n = int(spec["DIMENSION"])
    body = [line for line in rows if line]
    if body and body[-1] == "EOF":
        body.pop()
    if len(body) != n:
        raise problem(f"NODE_COORD_SECTION has {len(body)} lines, DIMENSION says {n}")
    try:
        table = np.array([[float(field) for field in line.split()] for line in body])
    except ValueError as err:
        raise problem(f"a NODE_COORD_SECTION line is not 'id x y' ({err})") from None
    if table.shape != (n, 3) or not np.array_equal(np.sort(table[:, 0]), np.arange(1, n + 1)):
        raise problem(f"NODE_COORD_SECTION must be {n} lines 'id x y' with the ids 1..{n}")
    coords = table[np.argsort(table[:, 0]), 1:]
    if not np.isfinite(coords).all():
        raise problem("a coordinate is NaN or infinite")
    low, span = coords.min(axis=0), np.ptp(coords, axis=0).max()
    if span == 0:
        raise problem("every city is at the same place")
    return ((coords - low) / span).astype(np.float32)[None]
