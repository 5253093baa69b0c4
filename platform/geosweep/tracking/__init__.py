"""Experiment tracking in MLflow."""

from geosweep.tracking.mlflow_run import EpochLogger, end_run, resolve_tracking_uri, start_run

__all__ = ["EpochLogger", "end_run", "resolve_tracking_uri", "start_run"]
