"""MLflow runs to rows: one row per run, named by the config params that tell the runs' configurations apart."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.entities import Run

SEED_KEY = "seed"
# What a sweep trial's fit() raised, one line (its trial driver sets it). A trial the scheduler stopped may raise
# too, as its workers are torn down: only a failed run's error is its row's.
ERROR_TAG = "error"
# A failed trial's run that a resumed sweep ran again as a new trial (--retry-failed): kept, but no longer a row.
SUPERSEDED_TAG = "sweep.superseded"
# Params that differ between runs without making them different configurations.
NOT_AXES = ("tracking.", "cache.")
# MLflow run status -> row status (a sweep's driver marks the trials its scheduler stopped KILLED).
STATUS = {
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "stopped early",
    "RUNNING": "running",
    "SCHEDULED": "running",
}


@dataclass(frozen=True)
class Row:
    """One run as the sweep's leaderboard and the report compare it.

    Attributes:
        axes: config param -> value: the fewest params (MLflow's flattened names) that tell the compared runs'
            configurations apart, plus the seed under SEED_KEY. Rows whose axes differ only in the seed are
            one configuration, grouped over seeds.
        status: "finished", "stopped early" (the scheduler ended it), "failed" or "running".
        metrics: each metric's latest value.
        seconds: from start to end; None while it runs.
        error: what ended a failed run, one line; "" otherwise.
        run_id: the MLflow run.
        run_name: the MLflow run's name.
        experiment_id: the MLflow experiment holding the run.
        tags: the MLflow run's tags.
        params: the MLflow run's params (the flattened config).
    """

    axes: dict[str, str | None]
    status: str
    metrics: dict[str, float]
    seconds: float | None = None
    error: str = ""
    run_id: str = ""
    run_name: str = ""
    experiment_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def distinguishing_params(runs: list[Run]) -> list[str]:
    """The fewest config params (the seed aside) that tell the runs' configurations apart.

    A component flattens into keys that only some runs have (`hypernet.kwargs.hidden`
    for mip, `hypernet.kwargs` = {} for none) and that say nothing `hypernet.name`
    does not: a key is kept only if it splits runs that the keys kept before it do
    not, keys that every run has going first.
    """
    params = [run.data.params for run in runs]
    keys = {key for p in params for key in p if not key.startswith(NOT_AXES)} - {SEED_KEY}
    kept: list[str] = []
    distinct = 1
    for key in sorted(keys, key=lambda k: (sum(k not in p for p in params), k)):
        split = len({tuple(p.get(k) for k in [*kept, key]) for p in params})
        if split > distinct:
            kept.append(key)
            distinct = split
    return sorted(kept)


def run_rows(runs: list[Run]) -> list[Row]:
    """One row per run, its axes the params that tell these runs' configurations apart (see Row).

    Runs tagged SUPERSEDED_TAG (a failed trial that was run again) are left out.
    """
    runs = [run for run in runs if run.data.tags.get(SUPERSEDED_TAG) != "true"]
    axes = [*distinguishing_params(runs), SEED_KEY]
    rows = []
    for run in runs:
        ended = run.info.end_time and run.info.start_time
        status = STATUS.get(run.info.status, "failed")
        rows.append(
            Row(
                axes={key: run.data.params.get(key) for key in axes},
                status=status,
                metrics=dict(run.data.metrics),
                seconds=(run.info.end_time - run.info.start_time) / 1000 if ended else None,
                error=run.data.tags.get(ERROR_TAG, "") if status == "failed" else "",
                run_id=run.info.run_id,
                run_name=run.info.run_name,
                experiment_id=run.info.experiment_id,
                tags=dict(run.data.tags),
                params=dict(run.data.params),
            )
        )
    return rows


def configuration_label(row: Row) -> str:
    """What a row's configuration is called: its axes but the seed."""
    return ", ".join(f"{k}={v}" for k, v in sorted(row.axes.items()) if k != SEED_KEY)
