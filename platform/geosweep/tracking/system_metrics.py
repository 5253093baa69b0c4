"""The machine a run trains on, sampled into the run by MLflow's own system-metrics monitor.

`system/cpu_utilization_percentage`, `system/system_memory_usage_megabytes`, disk and network (psutil),
and `system/gpu_<i>_*` for each GPU of the node where nvidia-ml-py is installed (the `gpu` extra), one
step per `tracking.system_metrics_interval_s`. Rank 0 runs the monitor, for its node: the run keeps one
writer per process that writes it, and a trial's workers usually share rank 0's node (PACK placement);
NVML reports every GPU of that node, its other workers' too.

MLflow's monitor writes from its own thread and never raises into training: a write or status read that
fails ends its sampling with a warning (so an MLflow outage ends a run's system metrics, not the run;
the run's own writes wait in rank 0's outbox). A run whose status is no longer RUNNING also ends it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor
from mlflow.system_metrics.metrics.rocm_monitor import ROCMMonitor
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

from geosweep.config import TrackingSpec

log = logging.getLogger(__name__)


class RunSystemMetrics(SystemMetricsMonitor):
    """MLflow's monitor, continuing a resumed run's steps, whose last step also holds a sample taken as it stops.

    MLflow's own `finish` drops the samples of the last, partial interval: a run shorter than one interval
    would have none, and a failed run would lose the machine's state when it failed.
    """

    def __init__(self, run_id: str, tracking_uri: str, interval_s: float) -> None:
        super().__init__(run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=tracking_uri)
        if torch.cuda.is_available() and not any(isinstance(m, GPUMonitor | ROCMMonitor) for m in self.monitors):
            log.warning("no GPU metrics: MLflow's monitor needs nvidia-ml-py (pip install 'geosweep[gpu]')")

    def finish(self) -> None:
        """Stop sampling; log one more sample with those since the last logged step (never raises)."""
        if self._process is None:  # never started
            return
        super().finish()
        try:
            self.collect_metrics()
            self.publish_metrics(self.aggregate_metrics())
            self.mlflow_logger.flush()
        except Exception as error:  # noqa: BLE001  (as in MLflow's monitor: a lost sample never fails the run)
            log.warning("could not log the last system metrics of run %s: %s", self._run_id, error)


@contextmanager
def system_metrics(tracking: TrackingSpec, tracking_uri: str, run_id: str) -> Iterator[RunSystemMetrics | None]:
    """Sample this node into the run while the block runs, failed or not (None: off, or the monitor could not start)."""
    monitor = started_monitor(tracking, tracking_uri, run_id) if tracking.system_metrics else None
    try:
        yield monitor
    finally:
        if monitor is not None:
            monitor.finish()


def started_monitor(tracking: TrackingSpec, tracking_uri: str, run_id: str) -> RunSystemMetrics | None:
    """The run's monitor, sampling; None, with a warning, if its one read before it starts failed."""
    # Its start and stop lines (and "no GPU") would repeat for every run on the console; warnings still show.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    try:
        monitor = RunSystemMetrics(run_id, tracking_uri, tracking.system_metrics_interval_s)
    except Exception as error:  # noqa: BLE001  (the run's last system step, read from the store: not worth a run)
        log.warning("no system metrics for run %s: %s", run_id, error)
        return None
    monitor.start()
    return monitor
