"""Running a sweep on Ray Tune (Train V2): one Tune function trial per configuration, each driving a TorchTrainer.

Tune's schedulers see every epoch through Train's TuneReportCallback. The trial
driver holds a sliver of a CPU: with the default whole CPU, concurrent trial
drivers would hold every CPU and their workers could never start. A trial of one
CPU worker trains in its own process instead, holding that worker's resources, and
reports to Tune directly (`trains_in_trial`).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow.entities
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

from geosweep.cluster.admission import TrialDemand
from geosweep.cluster.preflight import preflight
from geosweep.comparison.importance import record_importance
from geosweep.comparison.rows import SUPERSEDED_TAG, run_rows
from geosweep.config import ConfigError, RunConfig, flatten, set_values
from geosweep.environ import scoped_environ, unless_set
from geosweep.ray_local import default_storage_path, ensure_ray
from geosweep.sweep.best_model import register_best_model
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.leaderboard import leaderboard
from geosweep.sweep.mlflow_callback import MarkStoppedTrials
from geosweep.sweep.parent import record_summary, shared_tags, sweep_params
from geosweep.sweep.progress import progress_view
from geosweep.sweep.space import param_space
from geosweep.sweep.study import study_name, study_storage
from geosweep.sweep.trial import run_trial
from geosweep.tracking.mlflow_run import experiment_id, origin_tags, resolve_tracking_uri, terminate_run


def trains_in_trial(sweep: SweepConfig) -> bool:
    """Whether each trial trains in its Tune trial's own process (one CPU worker), not on Ray Train."""
    scaling = sweep.base.scaling
    return sweep.resources.one_worker_in_trial and scaling.num_workers == 1 and not scaling.use_gpu


def trial_demand(sweep: SweepConfig) -> TrialDemand:
    """One trial: its Train workers plus the Tune trial driver that runs their TorchTrainer, or its one worker."""
    if trains_in_trial(sweep):
        return TrialDemand.of(sweep.base.scaling)
    driver = {"CPU": sweep.resources.trial_driver_cpus, **sweep.resources.trial_driver_resources}
    return TrialDemand.of(sweep.base.scaling, driver=driver)


def trial_resources(sweep: SweepConfig) -> dict[str, float]:
    """What Tune reserves for a trial's own process: the driver's sliver, or the whole worker it trains as."""
    demand = trial_demand(sweep)
    return dict(demand.worker) if trains_in_trial(sweep) else dict(demand.driver)


def admitted_trials(sweep: SweepConfig) -> int:
    """Concurrent trials: what the cluster holds at full scale, at most resources.max_concurrent_trials.

    Raises:
        ConfigError: not even one trial fits, or storage_path or the tracking URI cannot work on this cluster.
    """
    fit = preflight(
        f"sweep {sweep.name!r}",
        trial_demand(sweep),
        storage_path=sweep.storage_path,
        storage_field="storage_path",
        tracking_uri=sweep.base.tracking.tracking_uri,
        tracking_field="base.tracking.tracking_uri",
    )
    return min(fit, sweep.resources.max_concurrent_trials or fit)


def searcher(sweep: SweepConfig, parent_run_id: str | None = None):
    """The Tune search algorithm the sweep names, seeded from the base config (None: Tune's BasicVariantGenerator).

    Optuna's study goes to a journal file in the sweep's Tune directory when the sweep's run is known
    (geosweep.sweep.study), so that optuna-dashboard can open it; else it stays in memory.
    """
    if sweep.searcher.name == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        if parent_run_id is None:
            return OptunaSearch(seed=sweep.base.seed)
        storage = study_storage(sweep)
        return OptunaSearch(seed=sweep.base.seed, storage=storage, study_name=study_name(sweep, parent_run_id))
    if sweep.searcher.name == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=sweep.base.seed)
    return None  # grid and random


def scheduler(sweep: SweepConfig):
    """The Tune trial scheduler the sweep names; ASHA and the median rule count time in epochs."""
    spec = sweep.scheduler
    if spec.name == "asha":
        return ASHAScheduler(
            time_attr="epoch",
            max_t=sweep.base.epochs,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
        )
    if spec.name == "median_stop":
        return MedianStoppingRule(time_attr="epoch", grace_period=spec.grace_period)
    return FIFOScheduler()


def start_parent_run(sweep: SweepConfig) -> str:
    """A new MLflow parent run for this run of the sweep; an earlier run of the same name keeps its own.

    It holds the sweep's definition as params and the tags all its trials share (geosweep.sweep.parent).
    """
    base: RunConfig = sweep.base
    client = MlflowClient(resolve_tracking_uri(base.tracking.tracking_uri))
    tags = {**shared_tags(sweep), "sweep.name": sweep.name, "sweep.parent": "true"}
    run = client.create_run(experiment_id(client, base.tracking.experiment), run_name=sweep.name, tags=tags)
    params = [mlflow.entities.Param(key, value) for key, value in sweep_params(sweep).items()]
    client.log_batch(run.info.run_id, params=params)
    client.log_text(run.info.run_id, sweep.model_dump_json(indent=2), "sweep.json")
    return run.info.run_id


def parent_to_resume(sweep: SweepConfig, tune_path: str, allow_changes: bool) -> str:
    """The parent run of the latest run of this sweep, once resuming it is known to be safe.

    A refused resume leaves no trace; an accepted one with changes tags the parent with the changed fields.

    Raises:
        ConfigError: no Tune state at `tune_path` or no parent run (a wrong name or storage_path), or,
            unless `allow_changes`, a sweep config that differs from the one the sweep started with.
    """
    if not tune.Tuner.can_restore(tune_path):
        raise ConfigError(
            f"--resume: no sweep {sweep.name!r} to resume: {tune_path} holds no Tune state "
            "(check the sweep's name and storage_path)"
        )
    client = MlflowClient(resolve_tracking_uri(sweep.base.tracking.tracking_uri))
    experiment = client.get_experiment_by_name(sweep.base.tracking.experiment)
    query = f"tags.`sweep.name` = '{sweep.name}' and tags.`sweep.parent` = 'true'"
    latest_first = ["attributes.start_time DESC"]
    parents = (
        client.search_runs([experiment.experiment_id], query, max_results=1, order_by=latest_first)
        if experiment
        else []
    )
    if not parents:
        raise ConfigError(
            f"--resume: sweep {sweep.name!r} has no parent run in experiment {sweep.base.tracking.experiment!r} "
            f"of {sweep.base.tracking.tracking_uri} (check base.tracking)"
        )
    saved_json = Path(client.download_artifacts(parents[0].info.run_id, "sweep.json")).read_text()
    saved = SweepConfig.model_validate_json(saved_json)
    before, now = flatten(saved), flatten(sweep)
    changed = sorted(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))
    if changed and not allow_changes:
        shown = "; ".join(f"{key}: {before.get(key, '-')} -> {now.get(key, '-')}" for key in changed)
        raise ConfigError(
            f"--resume: the sweep differs from the one that started: {shown}. Unfinished trials would mix "
            "both; resume with --allow-changes to use the new values, or restore the old file"
        )
    if changed:  # unfinished trials keep the params they started with in MLflow: the parent says what changed
        client.set_tag(parents[0].info.run_id, "sweep.resumed_with_changes", ", ".join(changed)[:500])
    return parents[0].info.run_id


def supersede_failed_trials(client: MlflowClient, parent_run_id: str) -> None:
    """Tag the sweep's failed trial runs as superseded: Tune runs each failed trial again as a new trial.

    The runs stay in MLflow; the leaderboard and the report leave them out (comparison.rows.SUPERSEDED_TAG).
    """
    for run in trial_runs(client, parent_run_id):
        if run.info.status == "FAILED":
            client.set_tag(run.info.run_id, SUPERSEDED_TAG, "true")


def run_sweep(
    sweep: SweepConfig, resume: bool = False, allow_changes: bool = False, retry_failed: bool = False
) -> tuple[tune.ResultGrid, str]:
    """Run a sweep (a new parent run each time), or with `resume` finish its latest run; write its leaderboard.

    Args:
        sweep: the sweep.
        resume: finish the latest run of this sweep (its driver died): finished trials keep their
            results, unfinished ones continue from their last checkpoint.
        allow_changes: with `resume`, accept a sweep config that differs from the one it started with.
        retry_failed: with `resume`, run the trials that failed again too.

    Returns:
        Tune's result grid (failed trials are in `.errors`) and the leaderboard as markdown.

    Raises:
        ConfigError: the sweep cannot run on this cluster, or cannot be resumed (see parent_to_resume);
            either way before any MLflow run is created.
    """
    ensure_ray()
    concurrency = admitted_trials(sweep)  # before anything is recorded: a sweep that cannot run leaves no trace
    # Trials run in other processes (other nodes, other working directories): pin the tracking URI and the
    # storage the driver resolved.
    uri = resolve_tracking_uri(sweep.base.tracking.tracking_uri)
    storage = sweep.storage_path or default_storage_path() or os.path.expanduser("~/ray_results")
    resolved = {"base.tracking.tracking_uri": uri, "storage_path": storage}
    sweep = SweepConfig.model_validate(set_values(sweep.model_dump(mode="json"), resolved))
    tune_path = f"{storage.rstrip('/')}/{sweep.name}"
    parent_run_id = parent_to_resume(sweep, tune_path, allow_changes) if resume else start_parent_run(sweep)
    print(f"MLflow parent run {parent_run_id} ({sweep.name}) in {uri}", flush=True)
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial,
            sweep=sweep.model_dump(mode="json"),
            parent_run_id=parent_run_id,
            origin=origin_tags(),
            in_trial=trains_in_trial(sweep),
        ),
        trial_resources(sweep),
    )
    # Restore too: a restored sweep keeps its saved reporter, which needs the output engine the view selects.
    with progress_view(sweep.name, sweep.base.epochs, sweep.progress_interval_s) as output:
        if resume:  # finished trials keep their results; unfinished ones continue from their last checkpoint
            if retry_failed:
                supersede_failed_trials(MlflowClient(uri), parent_run_id)
            tuner = tune.Tuner.restore(tune_path, trainable, resume_unfinished=True, restart_errored=retry_failed)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(sweep),
                tune_config=tune.TuneConfig(
                    metric=sweep.metric,
                    mode=sweep.mode,
                    search_alg=searcher(sweep, parent_run_id),
                    scheduler=scheduler(sweep),
                    num_samples=sweep.searcher.num_samples,
                    max_concurrent_trials=concurrency,
                    # A trial training in its own process hands that process on to the next trial: the start,
                    # imports and first uses (about 6 s on 2 cores) are paid once per concurrent slot, not per
                    # trial. Not on Ray Train: its TuneReportCallback reports through a queue of the first
                    # trial's session, which a reused process's next trial never drains (the trial hangs).
                    reuse_actors=trains_in_trial(sweep),
                ),
                # output: the progress view, not Tune's table
                run_config=tune.RunConfig(
                    name=sweep.name,
                    storage_path=storage,
                    # A trial whose process died starts again from its last checkpoint (its Train run's, or Tune's).
                    failure_config=tune.FailureConfig(max_failures=sweep.base.failure.max_failures),
                    # A trial training in its own process checkpoints through Tune (Train's runs keep their own).
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=sweep.base.failure.checkpoints_to_keep),
                    # A trial the scheduler stops is marked in MLflow then, not when the sweep ends.
                    callbacks=[MarkStoppedTrials(uri, parent_run_id, sweep.base.epochs, sweep.scheduler.name)],
                    **output,
                ),
            )
        # Tune snapshots its state whenever a trial has checkpointed num_to_keep times, and warns when that is
        # often; it is how its view of each trial's latest checkpoint stays true. Slow snapshots still warn.
        with scoped_environ(unless_set({"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"})):
            results = tuner.fit()
    return results, record_leaderboard(sweep, results, MlflowClient(uri), parent_run_id)


def trial_runs(client: MlflowClient, parent_run_id: str) -> list[mlflow.entities.Run]:
    """The sweep's trial runs in MLflow, oldest first."""
    experiment = client.get_run(parent_run_id).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return client.search_runs([experiment], query, max_results=50_000, order_by=["attributes.start_time ASC"])


def end_trial_runs(sweep: SweepConfig, results: tune.ResultGrid, client: MlflowClient, parent_run_id: str) -> None:
    """End each trial's MLflow run as Tune ended the trial: FAILED on error, KILLED when the scheduler stopped it.

    The final reconciliation: MarkStoppedTrials marked early-stopped trials as they stopped; a trial stopped
    after its last epoch (ASHA at max_t) may have been torn down before its driver closed its run, and one that
    failed before its run was recorded as failed is left RUNNING.
    """
    by_trial = {run.data.tags.get("sweep.trial_id"): run for run in trial_runs(client, parent_run_id)}
    for result in results:
        metrics = result.metrics or {}
        run = by_trial.get(metrics.get("trial_id"))  # none if it failed before its first epoch: run_trial ended it
        stopped = metrics.get("epoch", 0) < sweep.base.epochs
        status = "FAILED" if result.error else "KILLED" if stopped else "FINISHED"
        if run is not None and run.info.status != status:
            terminate_run(client, run.info.run_id, status)


def record_leaderboard(sweep: SweepConfig, results: tune.ResultGrid, client: MlflowClient, parent_run_id: str) -> str:
    """End the trial runs as Tune ended them, log the leaderboard on the parent run and end it.

    The parent holds `leaderboard.md`, `parallel_coordinates.html`, the best configuration (`best_config.yaml`)
    and the parameters' importance (`importance.json`, `importance/<param>` metrics).

    Returns:
        The leaderboard as markdown.
    """
    end_trial_runs(sweep, results, client, parent_run_id)
    sampled = {result.metrics["trial_id"]: result.config for result in results if "trial_id" in (result.metrics or {})}
    rows = run_rows(trial_runs(client, parent_run_id))
    board = leaderboard(sweep, rows, sampled)
    record_importance(client, parent_run_id, rows, sweep.metric, sweep.mode)  # importance/<param>, importance.json
    client.log_text(parent_run_id, board.markdown, "leaderboard.md")
    client.log_text(parent_run_id, board.parallel_coordinates, "parallel_coordinates.html")
    if board.best_config is not None:
        client.log_text(parent_run_id, board.best_config, "best_config.yaml")
    record_summary(client, parent_run_id, sweep, board)  # best/<metric>, best.* params, description, table
    terminate_run(client, parent_run_id, "FAILED" if board.failed else "FINISHED")
    register_best_model(sweep, client, rows)  # models:/geosweep-<sweep>@best moves only to a better model
    return board.markdown
