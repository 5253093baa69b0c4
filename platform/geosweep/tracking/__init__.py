"""Experiment tracking in MLflow."""

import os

# MLflow prints "View run ... at ..." for every run ended on a tracking server: each trial's would bury the
# sweep's progress view, which names the runs itself. Set here, every geosweep process that tracks has it
# (drivers, trial actors, workers, on any node); a value the user set wins.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

# Imported after the setting above, which the modules below read when they end runs.
from geosweep.tracking.mlflow_run import EpochLogger, end_run, resolve_tracking_uri, start_run
from geosweep.tracking.outbox import TrackingUnavailable

__all__ = ["EpochLogger", "TrackingUnavailable", "end_run", "resolve_tracking_uri", "start_run"]
