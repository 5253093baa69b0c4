"""Tours as permutations: validity checks, closed-tour lengths, and exact or LKH reference tours.

A tour of an n-city instance is a permutation of 0..n-1; the salesman returns
from the last city to the first. Anything else (a repeated city, a missing one,
an index out of range) is an error, never a silently wrong length.
"""

from __future__ import annotations

import elkai
import numpy as np
import torch

# Exact dynamic programming costs O(2^n n^2) time; beyond this, use lkh_tours.
MAX_HELD_KARP_NODES = 13

# LKH works in integer distances (EUC_2D rounds each edge to the nearest integer).
# Instances are scaled so that their larger side spans this many units: each edge
# then carries a rounding error of at most 5e-8 of the side, far below any gap
# between distinct tours of random instances, and PRECISION (100) * the longest
# edge (1.42e9) still fits LKH's 32-bit costs. attention-learn-to-route uses the same scale.
LKH_SCALE = 1e7


class InvalidTourError(ValueError):
    """A tour that is not a permutation of the instance's cities."""


def check_tours(tours: torch.Tensor | np.ndarray, num_nodes: int) -> None:
    """Check that every row of `tours` is a permutation of 0..num_nodes-1.

    Vectorised over instances, on the tours' own device; only a failure moves
    a single row to the CPU to describe it.

    Args:
        tours: (B, n) integer city indices.
        num_nodes: the number of cities of every instance.

    Raises:
        InvalidTourError: naming the first bad instance and what is wrong with it.
    """
    if isinstance(tours, np.ndarray):
        if not np.issubdtype(tours.dtype, np.integer):
            raise InvalidTourError(f"tours must hold integer city indices, got dtype {tours.dtype}")
        tours = torch.from_numpy(tours.astype(np.int64, copy=False))
    elif tours.dtype.is_floating_point or tours.dtype.is_complex or tours.dtype == torch.bool:
        raise InvalidTourError(f"tours must hold integer city indices, got dtype {tours.dtype}")
    if tours.ndim != 2:
        raise InvalidTourError(f"tours must have shape (B, n), got {tuple(tours.shape)}")
    if tours.shape[1] != num_nodes:
        raise InvalidTourError(
            f"instance 0: the tour has {tours.shape[1]} entries, expected a permutation of the "
            f"{num_nodes} cities 0..{num_nodes - 1} (every instance has this width)"
        )
    if tours.shape[0] == 0:
        return
    # A row is a permutation exactly when, sorted, it equals 0..n-1.
    ordered = tours.long().sort(dim=1).values
    bad = (ordered != torch.arange(num_nodes, device=tours.device)).any(dim=1)
    if not bad.any():
        return
    index = int(bad.nonzero()[0, 0])
    row = tours[index].long().cpu().numpy()
    out_of_range = row[(row < 0) | (row >= num_nodes)]
    if out_of_range.size:
        raise InvalidTourError(f"instance {index}: city index {out_of_range[0]} is out of range 0..{num_nodes - 1}")
    visits = np.bincount(row, minlength=num_nodes)
    repeated, missing = np.flatnonzero(visits > 1)[0], np.flatnonzero(visits == 0)[0]
    raise InvalidTourError(
        f"instance {index}: the tour visits city {repeated} {visits[repeated]} times and never visits city {missing}"
    )


def tour_length(coords: torch.Tensor, tours: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Euclidean length of each closed tour, back to its first city.

    Args:
        coords: (B, n, 2) city coordinates, any float dtype and device.
        tours: (B, n) integer city indices (moved to `coords`' device).
        check: first check that every tour is a permutation (one device sync).

    Returns:
        (B,) lengths in `coords`' dtype.

    Raises:
        ValueError: `coords` is not (B, n, 2), or the batch sizes differ.
        InvalidTourError: a tour is not a permutation (when `check`).
    """
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise ValueError(f"coords must have shape (B, n, 2), got {tuple(coords.shape)}")
    if check:
        check_tours(tours, coords.shape[1])
    if tuple(tours.shape) != tuple(coords.shape[:2]):
        raise ValueError(f"tours must have shape {tuple(coords.shape[:2])} to match coords, got {tuple(tours.shape)}")
    index = tours.to(device=coords.device, dtype=torch.long).unsqueeze(-1).expand(-1, -1, 2)
    ordered = coords.gather(1, index)
    return (ordered - ordered.roll(-1, dims=1)).norm(dim=-1).sum(dim=1)


def _as_instances(coords: np.ndarray, what: str) -> np.ndarray:
    """Float64 copy of (M, n, 2) finite coordinates with n >= 3."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 3 or coords.shape[2] != 2 or coords.shape[1] < 3:
        raise ValueError(f"{what}: coords must have shape (M, n, 2) with n >= 3, got {coords.shape}")
    if not np.isfinite(coords).all():
        raise ValueError(f"{what}: coords hold NaN or infinite values")
    return coords


def held_karp(coords: np.ndarray) -> tuple[float, np.ndarray]:
    """The exact optimal closed tour by Held-Karp dynamic programming over subsets.

    cost[S, j] is the shortest path that leaves city 0, visits exactly the set S
    of other cities and ends at j in S. Subsets of one size are solved together,
    one numpy operation per end city.

    Args:
        coords: (n, 2) city coordinates, 3 <= n <= MAX_HELD_KARP_NODES.

    Returns:
        The optimal length and the tour (n,) int64, starting at city 0.

    Raises:
        ValueError: wrong shape, or more cities than MAX_HELD_KARP_NODES.
    """
    coords = _as_instances(np.asarray(coords)[None], "held_karp")[0]
    n = coords.shape[0]
    if n > MAX_HELD_KARP_NODES:
        raise ValueError(f"held_karp: {n} cities, but exact search is limited to {MAX_HELD_KARP_NODES} (use lkh_tours)")
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    others = n - 1  # city i + 1 is bit i; city 0 is the fixed start
    subsets = np.arange(1 << others)
    members = (subsets[:, None] >> np.arange(others)) & 1  # (2^m, m)
    cost = np.full((1 << others, others), np.inf)
    previous = np.full((1 << others, others), -1, dtype=np.int64)
    cost[1 << np.arange(others), np.arange(others)] = dist[0, 1:]
    size = members.sum(axis=1)
    for k in range(2, others + 1):
        of_size = subsets[size == k]
        for j in range(others):
            ending = of_size[members[of_size, j] == 1]
            before = ending ^ (1 << j)
            # cost[before, i] is inf for i outside `before`, so only real paths compete.
            candidates = cost[before] + dist[1:, j + 1]
            best = candidates.argmin(axis=1)
            cost[ending, j] = candidates[np.arange(ending.size), best]
            previous[ending, j] = best
    full = (1 << others) - 1
    closing = cost[full] + dist[1:, 0]
    last = int(closing.argmin())
    path, subset, j = [], full, last
    while j >= 0:
        path.append(j + 1)
        subset, j = subset ^ (1 << j), int(previous[subset, j])
    return float(closing[last]), np.array([0] + path[::-1], dtype=np.int64)


def lkh_tours(coords: np.ndarray, runs: int = 1) -> np.ndarray:
    """Reference tours from LKH-3 (the `elkai` package), deterministic for given coordinates.

    Each instance is shifted and scaled so that its larger side spans LKH_SCALE
    integer units (the optimal tour is unchanged by a similarity), whatever its
    original position and size.

    Args:
        coords: (M, n, 2) city coordinates, n >= 3.
        runs: independent LKH runs per instance, the best kept. One suffices at
            our sizes: measured here, at n = 20 one run matched ten on all of 300
            instances; at n = 50 it was above the best of ten on 6 of 300, by
            2.6e-5 relative on average over all instances.

    Returns:
        (M, n) int64 tours, each starting at city 0.
    """
    coords = _as_instances(coords, "lkh_tours")
    tours = np.empty(coords.shape[:2], dtype=np.int64)
    for i, instance in enumerate(coords):
        low = instance.min(axis=0)
        span = (instance.max(axis=0) - low).max()
        scaled = (instance - low) * (LKH_SCALE / span if span > 0 else 1.0)
        cities = elkai.Coordinates2D({city: (x, y) for city, (x, y) in enumerate(scaled.tolist())})
        tour = np.array(cities.solve_tsp(runs=runs)[:-1], dtype=np.int64)  # elkai repeats the start at the end
        tours[i] = np.roll(tour, -int(np.argmin(tour)))
    check_tours(tours, coords.shape[1])
    return tours
