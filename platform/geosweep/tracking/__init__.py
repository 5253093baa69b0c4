"""Experiment tracking in MLflow."""

from geosweep.tracking.mlflow_run import EpochLogger, end_run, resolve_tracking_uri, start_run, terminate_run
from geosweep.tracking.outbox import TrackingUnavailable

__all__ = ["EpochLogger", "TrackingUnavailable", "end_run", "resolve_tracking_uri", "start_run", "terminate_run"]
