"""The sweep's best model in the MLflow Model Registry: `geosweep-<sweep name>`, alias `best`.

At the end of every run of a sweep, resumed or not, the best configuration as the leaderboard ranks them
(the mean of the sweep's metric over seeds) puts its model forward: the LoggedModel of its run with the
best value of the metric (a trial stopped early logged none; the next configuration then stands in). It
becomes a new version holding the alias only if its mean beats the one recorded on the version the alias
holds; a version ranked by another metric gives way to the sweep's metric. So
`models:/geosweep-<sweep name>@best` loads the best model any run of the sweep has produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlflow.entities import LoggedModelStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from geosweep.comparison.groups import group_rows
from geosweep.comparison.rows import Row
from geosweep.environ import scoped_environ
from geosweep.sweep.config import SweepConfig
from geosweep.tracking.logged_model import logged_model

ALIAS = "best"
METRIC_TAG, MEAN_TAG = "sweep.metric", "sweep.metric_mean"  # what a version was ranked by, on the version


def registered_name(sweep_name: str) -> str:
    """The registered model a sweep's best models are versions of."""
    return f"geosweep-{sweep_name}"


@dataclass(frozen=True)
class Candidate:
    """The model a run of the sweep puts forward: its best configuration's best run's LoggedModel."""

    model_id: str
    run_id: str
    configuration: str  # the leaderboard's label
    mean: float  # the sweep's metric, averaged over the configuration's seeds
    seeds: int


def best_candidate(sweep: SweepConfig, client: MlflowClient, rows: list[Row]) -> Candidate | None:
    """The best configuration's model among `rows` (the trials of one run of the sweep); None if none logged one."""
    metric, sign = sweep.metric, (-1 if sweep.mode == "max" else 1)
    for group in group_rows(rows, metric, sweep.mode, ()):
        if group[metric] is None:  # ranked last: no configuration further down reported the metric
            return None
        reported = [row for row in group["rows"] if row.status != "failed" and metric in row.metrics]
        for row in sorted(reported, key=lambda row: sign * row.metrics[metric]):
            model = logged_model(client, row.experiment_id, row.run_id)
            if model is not None and model.status == LoggedModelStatus.READY:
                label = group["configuration"] or "(one configuration)"
                return Candidate(model.model_id, row.run_id, label, group[metric].mean, group["seeds"])
    return None


def register_best_model(sweep: SweepConfig, client: MlflowClient, rows: list[Row]) -> ModelVersion | None:
    """Register this run's best model as a new version with alias `best`, if it beats the version the alias holds.

    Args:
        sweep: the sweep (its name, metric and mode).
        client: the sweep's MLflow store, which holds the registry too.
        rows: the trial runs of this run of the sweep (comparison.rows.run_rows).

    Returns:
        The version the alias points at now; None if no trial logged a model and no earlier run registered one.
    """
    name = registered_name(sweep.name)
    candidate = best_candidate(sweep, client, rows)
    if candidate is None:
        return current_best(client, name)
    try:
        client.create_registered_model(
            name, tags={"sweep.name": sweep.name}, description=f"The best model of sweep {sweep.name!r} (alias {ALIAS})"
        )
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    current = current_best(client, name)
    source = f"models:/{candidate.model_id}"  # the version's link to its logged model in the UI
    if current is not None and (current.source == source or not beats(sweep, candidate, current)):
        return current
    # MLflow 3.17's registry resolves `models:/<id>` through the process-wide tracking URI, not this client's:
    # point it at the sweep's store for the call and restore both the setting and its environment variable.
    with scoped_environ({"MLFLOW_TRACKING_URI": client.tracking_uri}), _use_tracking_uri(client.tracking_uri):
        version = client.create_model_version(
            name,
            source,
            run_id=candidate.run_id,
            model_id=candidate.model_id,
            tags={METRIC_TAG: sweep.metric, MEAN_TAG: repr(candidate.mean), "sweep.mode": sweep.mode},
            description=f"{candidate.configuration}: {sweep.metric} {candidate.mean:.4g} "
            f"(mean over {candidate.seeds} seed{'s' if candidate.seeds > 1 else ''}, {sweep.mode} is best)",
        )
    client.set_registered_model_alias(name, ALIAS, version.version)
    # The logged model's page lists its registered versions from this tag, as mlflow.register_model sets it.
    # A tracking server returns the version as a string, the SQL store as an int: the tag holds an int either way.
    model = client.get_logged_model(candidate.model_id)
    listed = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS, "[]")) + [{"name": name, "version": int(version.version)}]
    client.set_logged_model_tags(candidate.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(listed)})
    return version


def current_best(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version alias `best` of registered model `name` points at, or None."""
    try:
        version = client.get_registered_model(name).aliases.get(ALIAS)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return None if version is None else client.get_model_version(name, version)


def beats(sweep: SweepConfig, candidate: Candidate, current: ModelVersion) -> bool:
    """Whether `candidate` beats `current` strictly on the sweep's metric (and any model one ranked by another)."""
    if current.tags.get(METRIC_TAG) != sweep.metric:
        return True
    held = float(current.tags[MEAN_TAG])
    return candidate.mean > held if sweep.mode == "max" else candidate.mean < held
