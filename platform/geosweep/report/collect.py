"""What the report shows, read from MLflow: the runs of an experiment or of a sweep, their curves, the nightly history.

Runs become the same rows the sweep's leaderboard groups; their `sampled`
values are the config params that tell the runs' configurations apart (the
sweep's axes, whatever produced the runs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from geosweep.sweep.leaderboard import configuration_label
from geosweep.sweep.space import SEED_KEY

NIGHTLY_EXPERIMENT = "nightly"
# Params that differ between runs without making them different configurations.
NOT_AXES = ("tracking.", "cache.")
# MLflow run status -> leaderboard status (a sweep marks trials its scheduler stopped KILLED).
STATUS = {
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "stopped early",
    "RUNNING": "running",
    "SCHEDULED": "running",
}


class ReportError(ValueError):
    """Input the report cannot use: an unknown experiment or sweep, a missing store."""


@dataclass
class Nightly:
    """The nightly history: metric -> entry -> [(YYYY-MM-DD, value)], or why there is none."""

    series: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    note: str = ""


@dataclass
class ReportData:
    """What the page shows: rows as the leaderboard groups them, curves by configuration, the nightly history."""

    title: str
    tracking_uri: str
    metric: str
    mode: str
    rows: list[dict]
    curves: dict[str, list[tuple[str, list[int], list[float]]]]
    nightly: Nightly


def paged_runs(client: MlflowClient, experiment_ids: list[str], query: str = "") -> Iterator[Run]:
    token = None
    while True:
        order = ["attributes.start_time ASC"]
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token, order_by=order)
        yield from page
        token = page.token
        if not token:
            return


def sweep_parents(client: MlflowClient, name: str | None = None) -> list[Run]:
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    query = "tags.`sweep.parent` = 'true'" + (f" and tags.`sweep.name` = '{name}'" if name else "")
    return list(paged_runs(client, experiments, query)) if experiments else []


def find_runs(client: MlflowClient, name: str) -> tuple[str, list[Run], dict]:
    """The runs `name` stands for: an experiment's runs (sweep parents left out), else a sweep's trial runs.

    Returns:
        (title, runs, the sweep's saved spec as a dict or {} for an experiment).

    Raises:
        ReportError: no experiment or sweep has that name, or several experiments hold a sweep of that name.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "active":
        runs = [r for r in paged_runs(client, [experiment.experiment_id]) if r.data.tags.get("sweep.parent") != "true"]
        return f"experiment {name}", runs, {}
    parents = sweep_parents(client, name) if re.fullmatch(r"[A-Za-z0-9_.-]+", name) else []  # sweep names' pattern
    if not parents:
        experiments = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
        sweeps = sorted({r.data.tags["sweep.name"] for r in sweep_parents(client)})
        raise ReportError(
            f"no experiment or sweep named {name!r} in {client.tracking_uri}; "
            f"experiments: {', '.join(experiments) or 'none'}; sweeps: {', '.join(sweeps) or 'none'}"
        )
    if len(parents) > 1:
        homes = sorted(client.get_experiment(p.info.experiment_id).name for p in parents)
        raise ReportError(
            f"sweep {name!r} ran in several experiments ({', '.join(homes)}): report one experiment instead"
        )
    parent = parents[0]
    try:
        spec = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep.json")).read_text())
    except (MlflowException, OSError, ValueError):
        spec = {}  # metric and mode then come from the command line or the defaults
    query = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    return f"sweep {name}", list(paged_runs(client, [parent.info.experiment_id], query)), spec


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


def run_rows(runs: list[Run]) -> list[dict]:
    """One leaderboard row per run; `sampled` holds its distinguishing params and its seed."""
    axes = [*distinguishing_params(runs), SEED_KEY]
    rows = []
    for run in runs:
        ended = run.info.end_time and run.info.start_time
        rows.append({
            "sampled": {key: run.data.params.get(key) for key in axes}, "status": STATUS.get(run.info.status, "failed"),
            "seconds": (run.info.end_time - run.info.start_time) / 1000 if ended else None,
            "metrics": run.data.metrics, "error": "", "run_id": run.info.run_id, "run_name": run.info.run_name,
            "tags": run.data.tags, "params": run.data.params,
        })  # fmt: skip
    return rows


def learning_curves(client: MlflowClient, rows: list[dict], metric: str) -> dict:
    """Configuration -> [(run name, epochs, values)] of `metric` for every run that logged it."""
    curves: dict[str, list[tuple[str, list[int], list[float]]]] = {}
    for row in rows:
        history = sorted(client.get_metric_history(row["run_id"], metric), key=lambda m: m.step)
        if history:
            curves.setdefault(configuration_label(row), []).append(
                (row["run_name"], [m.step for m in history], [m.value for m in history])
            )
    return curves


def nightly_history(client: MlflowClient) -> Nightly:
    """Each tracked metric's latest value per nightly date and suite entry (the last run of a date wins).

    Tracked metrics are those the latest night's `suite.yaml` gives a tolerance; without one, every metric.
    """
    experiment = client.get_experiment_by_name(NIGHTLY_EXPERIMENT)
    if experiment is None or experiment.lifecycle_stage != "active":
        return Nightly(note=f"No experiment {NIGHTLY_EXPERIMENT!r} in this store: no nightly benchmark has run yet.")
    latest: dict[tuple[str, str], Run] = {}
    nights: list[Run] = []
    untagged = 0
    for run in paged_runs(client, [experiment.experiment_id]):  # oldest first: later runs of a date replace earlier
        if run.data.tags.get("nightly.parent") == "true":  # a night's parent holds the suite, not results
            nights.append(run)
            continue
        date, entry = run.data.tags.get("nightly.date", ""), run.data.tags.get("nightly.entry")
        if not entry or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            untagged += 1
            continue
        latest[(date, entry)] = run
    tracked = tracked_metrics(client, nights[-1]) if nights else None
    series: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for (date, entry), run in sorted(latest.items()):
        for metric, value in run.data.metrics.items():
            if tracked is None or metric in tracked:
                series.setdefault(metric, {}).setdefault(entry, []).append((date, value))
    note = (
        "" if series else f"No run of {NIGHTLY_EXPERIMENT!r} has tracked metrics and nightly.date/nightly.entry tags."
    )
    if untagged:
        note += f" {untagged} runs without a YYYY-MM-DD nightly.date or a nightly.entry tag were left out."
    return Nightly(series=series, note=note.strip())


def tracked_metrics(client: MlflowClient, night: Run) -> set[str] | None:
    """The metrics a night's suite (its `suite.yaml` artifact) gives tolerances, or None if it has no such file."""
    try:
        suite = yaml.safe_load(Path(client.download_artifacts(night.info.run_id, "suite.yaml")).read_text())
    except (MlflowException, OSError, yaml.YAMLError):
        return None
    tolerances = suite.get("tolerances") if isinstance(suite, dict) else None
    return set(tolerances) if isinstance(tolerances, dict) and tolerances else None


def collect(tracking_uri: str, name: str, metric: str | None = None, mode: str | None = None) -> ReportData:
    """Everything the report of experiment or sweep `name` shows.

    Args:
        tracking_uri: the MLflow store (an SQLite file must already exist: reading never creates one).
        name: an experiment name, else a sweep name.
        metric: the validation metric to rank by and plot per epoch (default: the sweep's, else val_acc).
        mode: "max" or "min" (default: the sweep's mode for its own metric, else "max").

    Raises:
        ReportError: a missing store, no experiment or sweep of that name, or one with no runs.
    """
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no MLflow store at {tracking_uri}: set MLFLOW_TRACKING_URI or pass --tracking-uri")
    client = MlflowClient(tracking_uri)
    title, runs, spec = find_runs(client, name)
    if not runs:
        raise ReportError(f"{title} holds no runs yet")
    metric = metric or spec.get("metric", "val_acc")
    mode = mode or (spec.get("mode", "max") if metric == spec.get("metric") else "max")
    rows = run_rows(runs)
    curves = learning_curves(client, rows, metric)
    return ReportData(title, tracking_uri, metric, mode, rows, curves, nightly_history(client))
