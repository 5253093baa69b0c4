"""Live training metrics for Prometheus and Grafana, exported through Ray's metrics agent.

Each Ray node's agent serves every `ray.util.metrics` series of the processes on
that node at http://<node>:<metrics export port>/metrics, named with a `ray_`
prefix (`geosweep_epoch` is scraped as `ray_geosweep_epoch`). Step times are a
histogram: read them with histogram_quantile over its buckets, which count exactly
(Ray 2.60 estimates a histogram's _sum from its bucket midpoints). Tags are kept to
experiment, trial and rank, so the number of series grows with the trials and
workers of a sweep, never with steps or values.

Usage, on every rank of the training loop:

    live = LiveMetrics(experiment="representations", trial=trial_name, rank=rank)
    for epoch in ...:
        for batch in ...:
            ...
            live.step(seconds=step_seconds, samples=batch_size, loss=loss)
        live.epoch(epoch)
"""

from __future__ import annotations

import time

import torch
from ray.util.metrics import Gauge, Histogram

# Metric names as recorded; Prometheus sees them with RAY_PREFIX (dashboards/grafana/geosweep.json).
SAMPLES_PER_SECOND = "geosweep_samples_per_second"
STEP_SECONDS = "geosweep_step_seconds"
TRAIN_LOSS = "geosweep_train_loss"
EPOCH = "geosweep_epoch"
GPU_MAX_MEMORY_ALLOCATED = "geosweep_gpu_max_memory_allocated_bytes"
TAG_KEYS = ("experiment", "trial", "rank")
RAY_PREFIX = "ray_"
# From a tiny CPU batch to a large GPU step; coarse buckets keep the series count low.
STEP_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


def prometheus_series() -> set[str]:
    """Every series name LiveMetrics produces, as Prometheus scrapes it from Ray.

    Returns:
        The gauges' names and the step histogram's _bucket/_sum/_count series, each with Ray's prefix.
    """
    gauges = {SAMPLES_PER_SECOND, TRAIN_LOSS, EPOCH, GPU_MAX_MEMORY_ALLOCATED}
    histogram = {f"{STEP_SECONDS}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return {RAY_PREFIX + name for name in gauges | histogram}


class LiveMetrics:
    """Per-rank live metrics: samples/s, step seconds, loss, epoch and (on CUDA) peak GPU memory.

    `step` is meant to be called after every optimizer step. It observes the step time
    in a histogram (a few microseconds) and only accumulates the rest; gauges are
    updated at most every `flush_interval_s` and at each `epoch`, so a loss passed as a
    tensor is read (one device sync) once per flush, not once per step. Outside a Ray
    worker the records go nowhere, so the loop needs no special case for that.

    Args:
        experiment: the MLflow experiment (or sweep) name.
        trial: the trial's name, unique within the experiment.
        rank: the worker's world rank.
        flush_interval_s: the shortest time between two gauge updates.
    """

    def __init__(self, experiment: str, trial: str, rank: int, flush_interval_s: float = 1.0) -> None:
        for field, value in (("experiment", experiment), ("trial", trial)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"LiveMetrics: {field} must be a non-empty string (got {value!r})")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise ValueError(f"LiveMetrics: rank must be an int >= 0 (got {rank!r})")
        if flush_interval_s < 0:
            raise ValueError(f"LiveMetrics: flush_interval_s must be >= 0 (got {flush_interval_s!r})")
        self._tags = {"experiment": experiment, "trial": trial, "rank": str(rank)}
        self._flush_interval_s = flush_interval_s
        self._samples_per_second = Gauge(SAMPLES_PER_SECOND, "training samples per second on this rank", TAG_KEYS)
        self._step_seconds = Histogram(STEP_SECONDS, "seconds per optimizer step", STEP_SECONDS_BUCKETS, TAG_KEYS)
        self._loss = Gauge(TRAIN_LOSS, "training loss of the latest step", TAG_KEYS)
        self._epoch = Gauge(EPOCH, "the last finished epoch", TAG_KEYS)
        self._gpu_memory = Gauge(GPU_MAX_MEMORY_ALLOCATED, "peak bytes allocated by torch on this GPU", TAG_KEYS)
        self._pending_seconds = 0.0
        self._pending_samples = 0
        self._last_loss: float | torch.Tensor | None = None
        self._last_flush = time.monotonic()

    def step(self, seconds: float, samples: int, loss: float | torch.Tensor) -> None:
        """Record one optimizer step.

        Args:
            seconds: wall time of the step.
            samples: samples this rank trained on in the step.
            loss: the step's loss, a float or a tensor (read at the next flush, not now).
        """
        self._step_seconds.observe(seconds, tags=self._tags)
        self._pending_seconds += seconds
        self._pending_samples += samples
        self._last_loss = loss.detach() if isinstance(loss, torch.Tensor) else loss
        if time.monotonic() - self._last_flush >= self._flush_interval_s:
            self.flush()

    def epoch(self, epoch: int) -> None:
        """Record a finished epoch (and flush what the steps since the last flush accumulated).

        Args:
            epoch: the epoch just finished, counting from 1.
        """
        self._epoch.set(epoch, tags=self._tags)
        self.flush()

    def flush(self) -> None:
        """Update the gauges from the steps since the last flush."""
        if self._pending_seconds > 0:
            self._samples_per_second.set(self._pending_samples / self._pending_seconds, tags=self._tags)
        if self._last_loss is not None:
            self._loss.set(float(self._last_loss), tags=self._tags)
        # Only where this process already uses CUDA: asking otherwise would create a CUDA context.
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self._gpu_memory.set(torch.cuda.max_memory_allocated(), tags=self._tags)
        self._pending_seconds, self._pending_samples = 0.0, 0
        self._last_flush = time.monotonic()
