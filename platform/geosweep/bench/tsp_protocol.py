"""TSP configurations trained in this process (no Ray, no MLflow), scored the way a trial is.

    python -m geosweep.bench.tsp_protocol [--epochs 4] [--threads 1] [--precisions fp32 bf16] [--set key=value ...]

Trains configs/train/tsp20_am_tinv.yaml (with the overrides) on one CPU rank through
train/training.py's epoch loop, the one a trial runs (autocast included), then prints
each epoch's validation gap and throughput and the final greedy test gaps on the
original and every transformed copy. For side-by-side protocol checks: the same
budget before and after a change; with several --precisions, one run per precision,
their epochs interleaved so that a change in machine load hits every one alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from geosweep.config import load_run_config
from geosweep.data.tsp import VARIANTS
from geosweep.train.training import Training

CONFIG = Path(__file__).parents[3] / "configs" / "train" / "tsp20_am_tinv.yaml"


def main() -> None:
    """The command line: train every run, then print per-epoch and final metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], help="default: the config's")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = [f"epochs={args.epochs}", *args.overrides]
    precisions = args.precisions or [load_run_config(CONFIG, overrides).precision]
    started = time.perf_counter()
    runs = {
        precision: Training(load_run_config(CONFIG, [*overrides, f"precision={precision}"]), 0, 1, torch.device("cpu"))
        for precision in precisions
    }
    config = next(iter(runs.values())).config
    print(f"{config.representation}, task={config.task.kwargs}, {args.epochs} epochs")
    rates: dict[str, list[float]] = {precision: [] for precision in runs}
    for epoch in range(1, args.epochs + 1):
        for precision, training in runs.items():
            metrics = training.train_epoch(epoch, on_step=lambda *_: None) | training.task.evaluate()
            rates[precision].append(metrics["samples_per_sec"])
            print(
                f"{precision} epoch {epoch}: val_gap {metrics['val_gap']:.2f} %, "
                f"train_tour_len {metrics['train_tour_len']:.3f}, {metrics['samples_per_sec']:.0f} samples/s, "
                f"baseline version {metrics.get('baseline/version', '-')}"
            )
    for precision, training in runs.items():
        final = training.task.final_metrics()
        gaps = ", ".join(f"{name} {final[f'test_gap/{name}']:.2f}" for name in ["original", *VARIANTS])
        print(
            f"{precision}: test_gap % {gaps}; tour agreement across variants "
            f"{final['invariance/tour_agreement']:.3f}; median {statistics.median(rates[precision]):.0f} samples/s"
        )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
