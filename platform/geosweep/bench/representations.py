"""Representation costs, each printed as a ratio against its baseline measured in the same run.

    python -m geosweep.bench.representations [--clouds 256] [--points 1024]

1. tinv_mds (d x d covariance) vs classical MDS through the N x N eigendecomposition
   (goal >= 100x), with the largest pairwise-distance error of tinv_mds.
2. fa vs tinv_mds per forward of the same PointNet (about 8x expected for o3).
3. The representation cache: a second trial's representation seconds vs the first's
   (goal >= 20x lower), per representation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import geosweep.representations  # noqa: F401  (fills the registry)
from geosweep.config import parse_run_config
from geosweep.data.shapes import shapes
from geosweep.model import build_model
from geosweep.registry import REPRESENTATIONS
from geosweep.representations.mds import classical_mds_oracle
from geosweep.tasks.inputs import prepare_inputs


def seconds(fn, repeat: int = 3) -> float:
    """Best of `repeat` wall times: the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def tinv_vs_classical_seconds(clouds: torch.Tensor, oracle_clouds: int) -> tuple[float, float, float]:
    """Seconds per cloud of tinv_mds and of classical MDS (on the first `oracle_clouds`), and tinv_mds's error.

    Returns:
        (tinv_mds s/cloud, classical MDS s/cloud, tinv_mds's largest pairwise-distance error relative to the
        largest distance).
    """
    tinv = REPRESENTATIONS.build("tinv_mds", {})
    fast = seconds(lambda: tinv(clouds)) / len(clouds)
    subset = clouds[:oracle_clouds].numpy()
    slow = seconds(lambda: [classical_mds_oracle(c) for c in subset], repeat=1) / len(subset)
    out = tinv(clouds)[:, 0]
    mode = "donot_use_mm_for_euclid_dist"
    given, embedded = torch.cdist(clouds, clouds, compute_mode=mode), torch.cdist(out, out, compute_mode=mode)
    error = (embedded - given).abs().max() / given.max()
    return fast, slow, float(error)


def tinv_vs_classical(clouds: torch.Tensor, oracle_clouds: int) -> None:
    """Print figure 1: tinv_mds against classical MDS."""
    fast, slow, error = tinv_vs_classical_seconds(clouds, oracle_clouds)
    subset = clouds[:oracle_clouds]
    print(
        f"tinv_mds: {fast * 1e3:.3f} ms/cloud; classical MDS (N x N eigh, {len(subset)} clouds): "
        f"{slow * 1e3:.1f} ms/cloud; speed-up {slow / fast:.0f}x (goal >= 100x); "
        f"max relative pairwise-distance error {error:.1e}"
    )


def forward_seconds(clouds: torch.Tensor) -> dict[str, float]:
    """Seconds of one forward of the same PointNet on `clouds`, per representation (tinv_mds, fa)."""
    times = {}
    for name in ("tinv_mds", "fa"):
        config = parse_run_config(
            {
                "dataset": {"name": "shapes"},
                "representation": {"name": name},
                "backbone": {"name": "pointnet"},
                "epochs": 1,
            }
        )
        model = build_model(config, dim=3, out_dim=12).eval()
        with torch.no_grad():
            times[name] = seconds(lambda m=model: m(clouds))
    return times


def fa_vs_tinv(clouds: torch.Tensor) -> None:
    """Print figure 2: fa against tinv_mds per PointNet forward."""
    times = forward_seconds(clouds)
    print(
        f"PointNet forward on {len(clouds)} clouds: tinv_mds {times['tinv_mds']:.2f} s, fa (o3) {times['fa']:.2f} s; "
        f"fa / tinv_mds = {times['fa'] / times['tinv_mds']:.1f}x (8 frames)"
    )


def cache_second_trial(num_points: int, per_class: int) -> None:
    """Print figure 3: a second trial's representation seconds against the first's, which filled the cache."""
    data = shapes(seed=0, num_points=num_points, train_per_class=per_class, val_per_class=4, test_per_class=4)
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in (("tinv_mds", {}), ("fa", {}), ("geodesic_mds", {"k": 10})):
            config = parse_run_config(
                {
                    "dataset": {"name": "shapes"},
                    "representation": {"name": name, "kwargs": kwargs},
                    "backbone": {"name": "pointnet"},
                    "epochs": 1,
                    "cache": {"dir": str(Path(tmp) / "cache")},
                }
            )
            rep = REPRESENTATIONS.build(name, kwargs)
            first, second = (prepare_inputs(config, data, rep, rank=0).metrics for _ in range(2))
            assert first["cache/misses"] == 3 and second["cache/hits"] == 3
            print(
                f"cache, {name}: first trial {first['repr/seconds']:.3f} s, second {second['repr/seconds']:.4f} s; "
                f"{first['repr/seconds'] / second['repr/seconds']:.0f}x lower (goal >= 20x)"
            )


def sample_clouds(count: int, points: int) -> torch.Tensor:
    """`count` shapes clouds of `points` points (float64), seed 0; also seeds torch for the models built next."""
    torch.manual_seed(0)
    return torch.from_numpy(
        shapes(seed=0, num_points=points, train_per_class=-(-count // 12)).train.points[:count]
    ).double()


def throughput_ratios(clouds: int, points: int, oracle_clouds: int) -> dict[str, float]:
    """The ratios the nightly benchmark tracks, each against its baseline measured here side by side.

    Returns:
        `tinv_mds_speedup_vs_classical_mds` (per cloud; higher is better) and
        `fa_over_tinv_mds_forward` (PointNet forward seconds; lower is better).
    """
    sample = sample_clouds(clouds, points)
    fast, slow, _ = tinv_vs_classical_seconds(sample, oracle_clouds)
    times = forward_seconds(sample.float())
    return {
        "tinv_mds_speedup_vs_classical_mds": slow / fast,
        "fa_over_tinv_mds_forward": times["fa"] / times["tinv_mds"],
    }


def main() -> None:
    """The command line: the three figures, in order."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clouds", type=int, default=256)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--oracle-clouds", type=int, default=8, help="the O(N^3) baseline runs on this many")
    parser.add_argument("--cache-per-class", type=int, default=16)
    args = parser.parse_args()
    clouds = sample_clouds(args.clouds, args.points)
    tinv_vs_classical(clouds, args.oracle_clouds)
    fa_vs_tinv(clouds.float())
    cache_second_trial(args.points, args.cache_per_class)


if __name__ == "__main__":
    main()
