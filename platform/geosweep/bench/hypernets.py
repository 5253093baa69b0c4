"""Hypernetwork settings compared on shapes, with the same backbone, data and budget, in one process.

    python -m geosweep.bench.hypernets [--seeds 3] [--epochs 15] [--target-acc 0.8]

1. Convergence: epochs until validation accuracy first reaches the target, for
   none / standard / mip (spectrum-conditioned), mean +- sample SD [95 % interval] over seeds (a run
   that never reaches it counts as epochs + 1 and is reported as such).
2. Throughput: training samples/s of the spectrum-conditioned, batched mip
   hypernetwork relative to the same model without a hypernetwork.
"""

from __future__ import annotations

import argparse
import statistics

from geosweep.bench.plain import train_in_process
from geosweep.comparison.groups import spread, spread_text
from geosweep.config import parse_run_config

SETTINGS = ("none", "standard", "mip")


def config_for(hypernet: str, seed: int, epochs: int):
    """The benchmark's run: a small PointNet on tinv_mds shapes, with the hypernetwork setting `hypernet`."""
    return parse_run_config(
        {
            "dataset": {
                "name": "shapes",
                "kwargs": {"num_points": 256, "train_per_class": 48},
                "rotation": {"train": "z", "test": "so3"},
            },
            "representation": {"name": "tinv_mds"},
            "backbone": {
                "name": "pointnet",
                "kwargs": {"point_widths": [32, 64, 128], "head_widths": [64], "dropout": 0.1},
            },
            "hypernet": {"name": hypernet, "kwargs": {} if hypernet == "none" else {"hidden": [32]}},
            "optimizer": {"lr": 0.002},
            "epochs": epochs,
            "batch_size": 32,
            "seed": seed,
        }
    )


def main() -> None:
    """The command line: print convergence per setting, then the throughput ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--target-acc", type=float, default=0.8)
    args = parser.parse_args()

    train_seconds = {}
    for setting in SETTINGS:
        reached, final, seconds = [], [], []
        for seed in range(args.seeds):
            epochs = train_in_process(config_for(setting, seed, args.epochs)).epochs
            hits = [i + 1 for i, epoch in enumerate(epochs) if epoch.val_acc >= args.target_acc]
            reached.append(hits[0] if hits else args.epochs + 1)
            final.append(epochs[-1].val_acc)
            seconds += [epoch.train_seconds for epoch in epochs[1:]]
        train_seconds[setting] = statistics.median(seconds)
        missed = sum(r > args.epochs for r in reached)
        print(
            f"{setting:>8}: epochs to val_acc >= {args.target_acc}: {spread_text(spread(reached), '.1f')} "
            f"(never reached in {missed}/{args.seeds}); final val_acc {spread_text(spread(final), '.3f')}"
        )
    ratio = train_seconds["none"] / train_seconds["mip"]
    print(f"throughput, spectrum-conditioned mip / no hypernetwork: {ratio:.2f} (samples/s ratio, same model)")


if __name__ == "__main__":
    main()
