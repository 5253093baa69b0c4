"""The driver side of one training run: MLflow run, TorchTrainer, outcome."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray.train
from ray.train.torch import TorchTrainer

from geosweep.cluster.admission import TrialDemand, worker_resources
from geosweep.cluster.preflight import preflight
from geosweep.config import RunConfig
from geosweep.ray_local import ensure_ray
from geosweep.tracking import end_run, start_run
from geosweep.train.loop import train_loop_per_worker


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
    reuse_by: tuple[str, ...] = (),
    callbacks: list[Any] = (),
    inject_failure: dict[str, Any] | None = None,
) -> ray.train.Result:
    """Train `config` on Ray Train and record it in MLflow.

    Args:
        config: the run.
        storage_path: where Ray Train persists checkpoints (default ~/ray_results;
            shared storage such as s3:// on a multi-node cluster).
        run_name: the Train run's and MLflow run's name (default: from the axes and a timestamp).
        tags: extra MLflow tags.
        reuse_by: tag keys identifying an earlier MLflow run to write on into (a resumed sweep trial).
        callbacks: Ray Train callbacks (a sweep passes Tune's report callback).
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
    tracking_uri, run_id = start_run(config, run_name, tags, reuse_by)
    scaling = config.scaling
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "config": config.model_dump(mode="json"),
            "tracking_uri": tracking_uri,
            "run_id": run_id,
            "run_name": run_name,
            "inject_failure": inject_failure,
        },
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
            callbacks=list(callbacks),
        ),
    )
    succeeded = False
    try:
        result = trainer.fit()
        succeeded = True
        return result
    finally:
        end_run(tracking_uri, run_id, succeeded)
