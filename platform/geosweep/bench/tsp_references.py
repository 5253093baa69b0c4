"""LKH reference tours against the published optima (Concorde, in Kool et al. 2019), side by side.

    python -m geosweep.bench.tsp_references [--tsp20 1000] [--tsp50 300] [--seed 1234]

The instances are the first ones of the `tsp` dataset's test set of that seed
(uniform in the unit square). Their mean LKH tour length should match the
published mean optimal length (3.84 at n = 20, 5.70 at n = 50, means over
10,000 other instances, rounded) to within about two standard errors; the
seconds are for solving every instance, on one core (CPU seconds stay
meaningful on a busy machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from geosweep.data.tours import lkh_tours
from geosweep.data.tsp import closed_lengths, set_instances

PUBLISHED_OPTIMUM = {20: 3.84, 50: 5.70}  # Kool, van Hoof, Welling (ICLR 2019), Table 1, Concorde


def compare(num_nodes: int, count: int, seed: int) -> None:
    """Solve the first `count` test instances of TSP`num_nodes` with LKH; print their mean against the optimum."""
    coords = set_instances("test", num_nodes, count, seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    tours = lkh_tours(coords)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    lengths = closed_lengths(coords, tours)
    mean, std = lengths.mean(), lengths.std(ddof=1)
    error = std / np.sqrt(count)
    published = PUBLISHED_OPTIMUM[num_nodes]
    print(
        f"TSP{num_nodes}: LKH {mean:.3f} +- {error:.3f} (standard error; std {std:.3f}) "
        f"over {count} instances in {seconds:.1f} s ({cpu_seconds:.1f} s CPU) | published optimum {published:.2f} | "
        f"LKH / published = {mean / published:.4f} ({(mean - published) / error:+.1f} standard errors)"
    )


def main() -> None:
    """The command line: TSP20, then TSP50."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsp20", type=int, default=1000, help="TSP20 instances")
    parser.add_argument("--tsp50", type=int, default=300, help="TSP50 instances")
    parser.add_argument("--seed", type=int, default=1234, help="test-set seed (the tsp dataset's default)")
    args = parser.parse_args()
    compare(20, args.tsp20, args.seed)
    compare(50, args.tsp50, args.seed)


if __name__ == "__main__":
    main()
