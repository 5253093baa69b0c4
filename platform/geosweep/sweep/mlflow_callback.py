"""Early stopping made visible: the sweep's driver marks a trial's MLflow run KILLED the moment the scheduler stops it.

Tune calls a callback's on_trial_complete, in the driver, when it carries out a STOP decision: the scheduler's
(ASHA at a rung, the median rule) or the trial's own end after its last epoch. Only a stop before the last epoch
is an early one; a trial that ran every epoch closes its own run. Tune calls it before it tells the trial's
process to stop, so the run is marked while the sweep goes on, and the trial's driver, torn down next, leaves
a KILLED run as it is (geosweep.tracking.mlflow_run.end_run).
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from ray.tune import Callback
from ray.tune.experiment import Trial

from geosweep.sweep.trial import trial_run
from geosweep.tracking import terminate_run

STOPPED_AT_EPOCH_TAG = "sweep.stopped_at_epoch"  # the last epoch the scheduler judged: the rung it stopped at
STOPPED_BY_TAG = "sweep.stopped_by"  # the scheduler's name in the sweep config (asha, median_stop)


class MarkStoppedTrials(Callback):
    """Marks the run of a trial the scheduler stopped early: KILLED, with the epoch and the scheduler as tags.

    Tune pickles its callbacks with the sweep's state: this one holds plain values, and a resumed sweep keeps it.
    """

    def __init__(self, tracking_uri: str, parent_run_id: str, epochs: int, scheduler: str) -> None:
        self.tracking_uri = tracking_uri
        self.parent_run_id = parent_run_id
        self.epochs = epochs
        self.scheduler = scheduler

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info) -> None:
        """Tune stopped `trial`: mark its run if that was before its last epoch."""
        epoch = int((trial.last_result or {}).get("epoch", self.epochs))
        if epoch >= self.epochs:
            return
        client = MlflowClient(self.tracking_uri)
        experiment = client.get_run(self.parent_run_id).info.experiment_id
        run = trial_run(client, experiment, self.parent_run_id, trial.trial_id)
        if run is None:
            return
        client.set_tag(run.info.run_id, STOPPED_AT_EPOCH_TAG, str(epoch))
        client.set_tag(run.info.run_id, STOPPED_BY_TAG, self.scheduler)
        terminate_run(client, run.info.run_id, "KILLED")
