"""One sweep trial, as Tune runs it in its own process: the base config with the trial's values, trained.

On Ray Train, or with one CPU worker in the trial's process itself (sweep.run.trains_in_trial).

Kept apart from the sweep's driver (run.py) so that a trial's process imports only what a trial needs,
not the leaderboard, its figures or the searchers.
"""

from __future__ import annotations

from typing import Any

import mlflow.entities
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from geosweep.comparison.rows import ERROR_TAG
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.naming import keep_unique, trial_run_name
from geosweep.sweep.space import decode
from geosweep.tracking import start_run
from geosweep.tracking.mlflow_run import experiment_id, resolve_tracking_uri
from geosweep.train.launch import run_training, train_in_this_trial


def run_trial(
    sampled: dict[str, Any], sweep: dict[str, Any], parent_run_id: str, origin: dict[str, str], in_trial: bool
) -> None:
    """One Tune trial: the base config with this trial's sampled values, trained on Ray Train or in this process.

    Args:
        sampled: the values Tune sampled for this trial.
        sweep: the sweep, as data.
        parent_run_id: the sweep's MLflow parent run.
        origin: the driver's origin tags (user, commit: geosweep.tracking.mlflow_run.origin_tags).
        in_trial: train in this process (one CPU worker: sweep.run.trains_in_trial), not on Ray Train.
    """
    spec = SweepConfig.model_validate(sweep)
    values = decode(spec, sampled)
    config = trial_config(spec, values)
    trial_id = tune.get_context().get_trial_id()
    client = MlflowClient(resolve_tracking_uri(config.tracking.tracking_uri))
    earlier = trial_run(client, experiment_id(client, config.tracking.experiment), parent_run_id, trial_id)
    # A trial that finished just before its sweep's driver died may not be marked done in
    # Tune's saved state: its finished MLflow run says so, and it is reported, not retrained.
    if earlier is not None and earlier.info.status == "FINISHED":
        tune.report({**earlier.data.metrics, "epoch": config.epochs})
        return
    tags = {**origin, "mlflow.parentRunId": parent_run_id, "sweep.name": spec.name, "sweep.trial_id": trial_id}
    if earlier is None:
        _, run_id = start_run(config, trial_run_name(spec, values), tags)
        keep_unique(client, run_id, parent_run_id, trial_id)
    else:  # a resumed or restarted trial writes on into its run, under the name it already has
        run_id = earlier.info.run_id
        client.update_run(run_id, status="RUNNING")  # its last attempt may have ended it FAILED
    try:
        if in_trial:  # Tune keeps its checkpoints and restarts it from them
            train_in_this_trial(config, run_name=f"{spec.name}-{trial_id}", run_id=run_id)
        else:
            run_training(
                config,
                storage_path=spec.storage_path,
                run_name=f"{spec.name}-{trial_id}",  # the Train run's: a resumed trial finds its checkpoints by it
                run_id=run_id,
                callbacks=[TuneReportCallback()],
            )
    except Exception as error:
        # Its run says why (the leaderboard and the report show it if Tune counts the trial failed, see ERROR_TAG).
        client.set_tag(run_id, ERROR_TAG, last_line(error))
        raise


def trial_run(client: MlflowClient, experiment: str, parent_run_id: str, trial_id: str) -> mlflow.entities.Run | None:
    """The MLflow run of trial `trial_id` of the sweep run `parent_run_id`, if it has one yet."""
    query = f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.`sweep.trial_id` = '{trial_id}'"
    runs = client.search_runs([experiment], query, max_results=1)
    return runs[0] if runs else None


def last_line(error: BaseException) -> str:
    """The last line of an error's text: for a failed Train run, the worker's own exception under its traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:500] if lines else type(error).__name__  # MLflow caps a tag's value
