"""One sweep trial, as Tune runs it in its own process: the base config with the trial's values, on Ray Train.

Kept apart from the sweep's driver (run.py) so that a trial's process imports only what a trial needs,
not the leaderboard, its figures or the searchers.
"""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from geosweep.comparison.rows import ERROR_TAG
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.space import decode
from geosweep.tracking.mlflow_run import experiment_id, finished_run_metrics, resolve_tracking_uri
from geosweep.train.launch import run_training


def run_trial(sampled: dict[str, Any], sweep: dict[str, Any], parent_run_id: str) -> None:
    """One Tune trial: the base config with this trial's sampled values, trained on Ray Train."""
    spec = SweepConfig.model_validate(sweep)
    config = trial_config(spec, decode(spec, sampled))
    trial_id = tune.get_context().get_trial_id()
    # A trial that finished just before its sweep's driver died may not be marked done in
    # Tune's saved state: its finished MLflow run says so, and it is reported, not retrained.
    done = finished_run_metrics(config, {"mlflow.parentRunId": parent_run_id, "sweep.trial_id": trial_id})
    if done is not None:
        tune.report({**done, "epoch": config.epochs})
        return
    try:
        run_training(
            config,
            storage_path=spec.storage_path,
            run_name=f"{spec.name}-{trial_id}",  # deterministic: a resumed trial finds its Train run and MLflow run
            tags={"mlflow.parentRunId": parent_run_id, "sweep.name": spec.name, "sweep.trial_id": trial_id},
            reuse_by=("mlflow.parentRunId", "sweep.trial_id"),  # this sweep run's trial, not a namesake's
            callbacks=[TuneReportCallback()],
        )
    except Exception as error:
        # Its run says why (the leaderboard and the report show it if Tune counts the trial failed, see ERROR_TAG).
        client = MlflowClient(resolve_tracking_uri(config.tracking.tracking_uri))
        query = f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.`sweep.trial_id` = '{trial_id}'"
        for run in client.search_runs([experiment_id(client, config.tracking.experiment)], query, max_results=1):
            client.set_tag(run.info.run_id, ERROR_TAG, last_line(error))
        raise


def last_line(error: BaseException) -> str:
    """The last line of an error's text: for a failed Train run, the worker's own exception under its traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:500] if lines else type(error).__name__  # MLflow caps a tag's value
