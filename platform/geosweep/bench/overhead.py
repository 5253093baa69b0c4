"""Platform overhead: an epoch under `geosweep train` (Ray Train, 1 worker) against a plain PyTorch loop.

Both train and evaluate the same model on the same data with the same batch
size and thread count, side by side on this machine. Under geosweep an epoch
is measured between consecutive epochs' MLflow timestamps, so it includes
everything the platform adds: DDP wrapping, sharded evaluation, the collective
report, the checkpoint and the MLflow write.

    python -m geosweep.bench.overhead [--config CONFIG] [--epochs 4]

Prints the ratio (goal <= 1.10) and the seconds from `geosweep train` to the first reported epoch.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from geosweep.bench.plain import train_in_process
from geosweep.config import apply_overrides, load_run_config, parse_run_config

BENCH_EXPERIMENT = "bench"
DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "train" / "shapes_pointnet_tinv.yaml"


def geosweep_train(
    config_path: Path,
    overrides: list[str],
    workdir: Path,
    storage_path: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[MlflowClient, Run, float]:
    """Run `geosweep train` in a fresh process, its run in the experiment `bench`.

    Args:
        config_path: the run config file.
        overrides: `--set` items applied to it.
        workdir: where the run writes by default.
        storage_path: where the run's checkpoints go (default: in `workdir`); on a cluster, shared
            storage, since its worker may run on another node.
        tracking_uri: the MLflow store the run writes to (default: a SQLite file in `workdir`); on a
            cluster, one every node reaches.

    Returns:
        A client of the store, the MLflow run it recorded, and the wall-clock time it was launched.
    """
    uri = tracking_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    command = [
        sys.executable,
        "-m",
        "geosweep.cli",
        "train",
        str(config_path),
        "--storage-path",
        storage_path or str(workdir / "ray"),
        "--set",
        f"tracking.experiment={BENCH_EXPERIMENT}",
    ]
    for item in overrides:
        command += ["--set", item]
    launched = time.time()
    subprocess.run(command, check=True, env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(BENCH_EXPERIMENT).experiment_id
    (run,) = client.search_runs([experiment], order_by=["attributes.start_time DESC"], max_results=1)  # this one's
    return client, run, launched


def geosweep_epochs(
    config_path: Path,
    overrides: list[str],
    workdir: Path,
    storage_path: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[float, list[float], list[float]]:
    """Run `geosweep train` in a fresh process (arguments as `geosweep_train`).

    Returns:
        (seconds from launch to the first epoch in MLflow, seconds between consecutive
        epochs, seconds of each epoch's training phase alone).
    """
    client, run, launched = geosweep_train(config_path, overrides, workdir, storage_path, tracking_uri)
    stamps = [
        m.timestamp / 1000 for m in sorted(client.get_metric_history(run.info.run_id, "val_acc"), key=lambda m: m.step)
    ]
    train_phase = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_seconds")]
    return stamps[0] - launched, [b - a for a, b in itertools.pairwise(stamps)], train_phase[1:]


def main() -> None:
    """The command line: one comparison per thread count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="epochs left out of both medians")
    parser.add_argument("--num-points", type=int, default=1024)
    parser.add_argument("--train-per-class", type=int, default=128)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count()}))
    args = parser.parse_args()
    for threads in args.threads:
        compare(args, threads)


def compare(args: argparse.Namespace, threads: int) -> None:
    """One worker with `threads` CPUs against the plain loop with as many torch threads."""
    figures = measure_overhead(
        args.config,
        epochs=args.epochs,
        warmup=args.warmup,
        num_points=args.num_points,
        train_per_class=args.train_per_class,
        threads=threads,
    )
    print(f"--- {threads} thread(s) of {os.cpu_count()} cores")
    print(f"plain PyTorch loop: {figures.plain_seconds:.3f} s/epoch (median of {figures.plain_epochs})")
    print(f"geosweep, Ray Train 1 worker: {figures.geosweep_seconds:.3f} s/epoch (median of {figures.geosweep_epochs})")
    print(f"  of which the training phase: {figures.train_phase_seconds:.3f} s")
    print(f"platform overhead ratio: {figures.ratio:.3f} (goal <= 1.10)")
    print(f"seconds from `geosweep train` to the first reported epoch: {figures.first_epoch_seconds:.1f}")


@dataclass(frozen=True)
class Overhead:
    """Seconds per epoch under geosweep and in the plain loop, side by side."""

    plain_seconds: float  # median s/epoch of the plain loop
    plain_epochs: int  # epochs in that median
    geosweep_seconds: float  # median s/epoch under geosweep
    geosweep_epochs: int
    train_phase_seconds: float  # median training phase of a geosweep epoch
    first_epoch_seconds: float  # from launching `geosweep train` to its first epoch in MLflow

    @property
    def ratio(self) -> float:
        """Platform overhead: s/epoch under geosweep over the plain loop's."""
        return self.geosweep_seconds / self.plain_seconds


def measure_overhead(
    config_path: Path,
    *,
    epochs: int,
    warmup: int,
    num_points: int,
    train_per_class: int,
    threads: int,
    storage_path: str | None = None,
    tracking_uri: str | None = None,
) -> Overhead:
    """Epochs of `config_path` under geosweep (one worker with `threads` CPUs) and in a plain loop with as many threads.

    Returns:
        Both medians, warm-up epochs left out, and the time to the first epoch.
    """
    # Epochs of a realistic length: Ray Train collects a report on each controller
    # health check (every 2 s), so sub-second toy epochs would measure that interval.
    overrides = [
        f"epochs={epochs}",
        "scaling.num_workers=1",
        f"scaling.cpus_per_worker={threads}",
        f"dataset.kwargs.num_points={num_points}",
        f"dataset.kwargs.train_per_class={train_per_class}",
    ]
    config = parse_run_config(apply_overrides(load_run_config(config_path).model_dump(mode="json"), overrides))
    torch.set_num_threads(threads)

    # Warm-up epochs are left out on both sides: caches and allocators, and under
    # Ray the daemons (dashboard, agents) still starting on a small machine.
    plain = [epoch.seconds for epoch in train_in_process(config).epochs][warmup:]
    with tempfile.TemporaryDirectory() as tmp:
        first_epoch, under_ray, train_phase = geosweep_epochs(
            config_path, overrides, Path(tmp), storage_path, tracking_uri
        )
    under_ray, train_phase = under_ray[warmup - 1 :], train_phase[warmup - 1 :]
    return Overhead(
        plain_seconds=statistics.median(plain),
        plain_epochs=len(plain),
        geosweep_seconds=statistics.median(under_ray),
        geosweep_epochs=len(under_ray),
        train_phase_seconds=statistics.median(train_phase),
        first_epoch_seconds=first_epoch,
    )


if __name__ == "__main__":
    main()
