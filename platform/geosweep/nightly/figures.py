"""The suite's performance figures, measured by geosweep's benchmarks: ratios against a baseline run side by side.

Absolute seconds depend on the machine and its load; a ratio of two runs on the
same machine at the same time is what a night can compare with earlier nights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geosweep.bench.overhead import measure_overhead
from geosweep.bench.representations import throughput_ratios
from geosweep.nightly.suite import PlatformOverhead, RepresentationThroughput


def measure(
    spec: PlatformOverhead | RepresentationThroughput, storage_path: str | None = None, tracking_uri: str | None = None
) -> dict[str, float]:
    """Measure one figure; a training run among them writes to `storage_path` and `tracking_uri` (the suite's).

    Returns:
        Its tracked metrics (`spec.metrics`) plus the seconds behind them, for the record.
    """
    threads = torch.get_num_threads()
    try:
        if isinstance(spec, PlatformOverhead):
            return platform_overhead(spec, storage_path, tracking_uri)
        return representation_throughput(spec)
    finally:
        torch.set_num_threads(threads)  # the overhead benchmark pins the process's torch threads


def platform_overhead(spec: PlatformOverhead, storage_path: str | None, tracking_uri: str | None) -> dict[str, float]:
    """Platform overhead: s/epoch under geosweep over a plain PyTorch loop's, plus the seconds behind it."""
    overhead = measure_overhead(
        Path(spec.config),
        epochs=spec.epochs,
        warmup=spec.warmup,
        num_points=spec.num_points,
        train_per_class=spec.train_per_class,
        threads=spec.threads,
        storage_path=storage_path,
        tracking_uri=tracking_uri,
    )
    return {
        "perf/platform_overhead_ratio": overhead.ratio,
        "perf/plain_epoch_seconds": overhead.plain_seconds,
        "perf/geosweep_epoch_seconds": overhead.geosweep_seconds,
        "perf/seconds_to_first_epoch": overhead.first_epoch_seconds,
    }


def representation_throughput(spec: RepresentationThroughput) -> dict[str, float]:
    """The representation speed ratios of `throughput_ratios`, under `perf/`."""
    ratios = throughput_ratios(clouds=spec.clouds, points=spec.points, oracle_clouds=spec.oracle_clouds)
    return {f"perf/{name}": value for name, value in ratios.items()}
