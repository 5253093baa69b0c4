"""The driver side of one training run: MLflow run, TorchTrainer (or, for a one-worker trial, this process), outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray.train
from ray.train.torch import TorchTrainer

from geosweep.cluster.admission import TrialDemand, worker_resources
from geosweep.cluster.preflight import preflight
from geosweep.config import RunConfig
from geosweep.environ import scoped_environ, unless_set
from geosweep.ray_local import default_storage_path, ensure_ray, ray_logs_wanted
from geosweep.tracking import end_run, start_run
from geosweep.tracking.mlflow_run import resolve_tracking_uri
from geosweep.train.entry import train_loop_per_worker

# Train V2 hands each report (metrics for Tune, the checkpoint) over on the controller's health check,
# every 2 s by default: a 0.3 s epoch then costs 2 s. Polled this often, a report waits a fraction of an
# epoch. A value the user set wins.
REPORT_POLL_ENV, REPORT_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2"


def run_name_for(config: RunConfig) -> str:
    """A readable, unique run name: the three axes, the seed and a timestamp."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.representation.name}-{config.backbone.name}-{config.hypernet.name}-s{config.seed}-{stamp}"


def check_run(
    config: RunConfig,
    storage_path: str | Path | None,
    *,
    what: str,
    storage_field: str,
    tracking_field: str = "tracking.tracking_uri",
) -> None:
    """A run on this cluster fits, and its checkpoints and MLflow record outlive it (Ray must be initialised).

    Raises:
        ConfigError: naming the field that cannot work here.
    """
    preflight(
        what,
        TrialDemand.of(config.scaling),
        storage_path=str(storage_path) if storage_path else None,
        storage_field=storage_field,
        tracking_uri=config.tracking.tracking_uri,
        tracking_field=tracking_field,
    )


def run_training(
    config: RunConfig,
    *,
    storage_path: str | Path | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
    callbacks: list[Any] = (),
    echo: bool = False,
    inject_failure: dict[str, Any] | None = None,
) -> ray.train.Result:
    """Train `config` on Ray Train and record it in MLflow.

    Args:
        config: the run.
        storage_path: where Ray Train persists checkpoints (default: ray_local.default_storage_path;
            shared storage such as s3:// on a multi-node cluster).
        run_name: the Train run's and MLflow run's name (default: from the axes and a timestamp).
        tags: extra MLflow tags of a new run.
        run_id: an MLflow run to write into instead of a new one (a sweep trial's, which the trial made or resumes).
        callbacks: Ray Train callbacks (a sweep passes Tune's report callback).
        echo: print the MLflow run and one line per epoch (`geosweep train`; a sweep has its progress view).
        inject_failure: {"rank", "epoch", "marker"}: that rank's process exits once
            at that epoch (fault-tolerance tests only).

    Returns:
        Ray Train's result (final metrics, last checkpoint).

    Raises:
        ray.train.TrainingFailedError: the run failed more often than `failure.max_failures`
            allows; its MLflow run is marked FAILED and keeps every epoch already logged.
    """
    ensure_ray()
    run_name = run_name or run_name_for(config)
    storage_path = storage_path or default_storage_path()
    ray_logs = ray_logs_wanted()
    tracking_uri, run_id = own_or_new_run(config, run_name, tags, run_id)
    if echo:
        print(f"MLflow run {run_id} ({run_name}) in {tracking_uri}", flush=True)
    scaling = config.scaling
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(
            config, tracking_uri, run_id, run_name, echo=echo, ray_logs=ray_logs, inject_failure=inject_failure
        ),
        scaling_config=ray.train.ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker=worker_resources(scaling),
            placement_strategy=scaling.placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=str(storage_path) if storage_path else None,
            failure_config=ray.train.FailureConfig(max_failures=config.failure.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.failure.checkpoints_to_keep),
            # Ray Train's INFO lines (worker group started, each report) stay in its log files.
            logging_config=ray.train.LoggingConfig(log_level="INFO" if ray_logs else "WARNING"),
            callbacks=list(callbacks),
        ),
    )
    with run_outcome_recorded(tracking_uri, run_id), scoped_environ(unless_set({REPORT_POLL_ENV: REPORT_POLL_S})):
        return trainer.fit()


def train_in_this_trial(config: RunConfig, *, run_name: str, run_id: str | None = None) -> None:
    """Train a one-worker CPU `config` in this Tune trial's process and record it in MLflow (see session.TuneTrial).

    Tune persists the checkpoints in the trial's directory and restarts a failed trial from the last one
    (the sweep's `failure.max_failures`); its scheduler reads each epoch's report. The arguments are
    `run_training`'s.
    """
    from geosweep.train import loop  # the heavy imports only where this process trains
    from geosweep.train.session import TuneTrial

    tracking_uri, run_id = own_or_new_run(config, run_name, None, run_id)
    with run_outcome_recorded(tracking_uri, run_id):
        loop.train(loop_config(config, tracking_uri, run_id, run_name, ray_logs=ray_logs_wanted()), TuneTrial())


def own_or_new_run(
    config: RunConfig, run_name: str, tags: dict[str, str] | None, run_id: str | None
) -> tuple[str, str]:
    """(tracking URI, run id) of `run_id`, or of a new run (tracking.start_run) when it is None."""
    if run_id is None:
        return start_run(config, run_name, tags)
    return resolve_tracking_uri(config.tracking.tracking_uri), run_id


def loop_config(
    config: RunConfig,
    tracking_uri: str,
    run_id: str,
    run_name: str,
    *,
    echo: bool = False,
    ray_logs: bool = False,
    inject_failure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What geosweep.train.loop takes (see loop.train_rank): plain data, for Ray to ship to the workers."""
    return {
        "config": config.model_dump(mode="json"),
        "tracking_uri": tracking_uri,
        "run_id": run_id,
        "run_name": run_name,
        "echo": echo,
        "ray_logs": ray_logs,
        "inject_failure": inject_failure,
    }


@contextmanager
def run_outcome_recorded(tracking_uri: str, run_id: str) -> Iterator[None]:
    """End the MLflow run as the block ends: FINISHED when it returns, FAILED when it raises (and re-raise)."""
    try:
        yield
    except BaseException as error:
        close_failed_run(tracking_uri, run_id, error)
        raise
    end_run(tracking_uri, run_id, succeeded=True)


def close_failed_run(tracking_uri: str, run_id: str, error: BaseException) -> None:
    """Mark the run FAILED; where MLflow cannot be reached, say so on `error` rather than replace it."""
    try:  # one quick retry: MLflow's default back-off would hold the real error back for minutes
        with scoped_environ(unless_set({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})):
            end_run(tracking_uri, run_id, succeeded=False)
    except Exception as tracking_error:  # noqa: BLE001  (the training error is the one to raise)
        error.add_note(f"(and the MLflow run {run_id} could not be marked FAILED: {tracking_error})")
