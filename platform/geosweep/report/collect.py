"""What the report shows, read from MLflow: the runs of an experiment or of a sweep, their curves, the nightly history.

Runs become rows as the sweep's leaderboard makes them (geosweep.comparison.rows), so
a sweep's report and its leaderboard name and group its configurations alike.
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

from geosweep.comparison.rows import Row, configuration_label, run_rows
from geosweep.nightly import store
from geosweep.report.links import ui_address


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
    rows: list[Row]
    curves: dict[str, list[tuple[Row, list[int], list[float]]]]
    nightly: Nightly
    ui_address: str | None = None  # the MLflow UI the page links runs into; None: no links


def paged_runs(client: MlflowClient, experiment_ids: list[str], query: str = "") -> Iterator[Run]:
    """Every run of `experiment_ids` matching `query`, oldest first, read a page at a time."""
    token = None
    while True:
        order = ["attributes.start_time ASC"]
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token, order_by=order)
        yield from page
        token = page.token
        if not token:
            return


def sweep_parents(client: MlflowClient, name: str | None = None) -> list[Run]:
    """The parent runs of every sweep, or of sweep `name`, in any active experiment."""
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


def learning_curves(client: MlflowClient, rows: list[Row], metric: str) -> dict:
    """Configuration -> [(run's row, epochs, values)] of `metric` for every run that logged it."""
    curves: dict[str, list[tuple[Row, list[int], list[float]]]] = {}
    for row in rows:
        history = sorted(client.get_metric_history(row.run_id, metric), key=lambda m: m.step)
        if history:
            curves.setdefault(configuration_label(row), []).append(
                (row, [m.step for m in history], [m.value for m in history])
            )
    return curves


def nightly_history(client: MlflowClient) -> Nightly:
    """Each tracked metric's latest value per nightly date and suite entry (the last run of a date wins).

    Nights are found by their tags wherever the suite's `experiment` put them. Tracked
    metrics are those the latest night's `suite.yaml` gives a tolerance; without one, every metric.
    """
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    nights = list(paged_runs(client, experiments, f"tags.`{store.PARENT}` = 'true'")) if experiments else []
    if not nights:
        return Nightly(note=f"No run tagged {store.PARENT}=true in this store: no nightly benchmark has run yet.")
    homes = sorted({night.info.experiment_id for night in nights})
    latest: dict[tuple[str, str], Run] = {}
    untagged = 0
    for run in paged_runs(client, homes):  # oldest first: later runs of a date replace earlier ones
        if run.data.tags.get(store.PARENT) == "true":  # a night's parent holds the suite, not results
            continue
        date, entry = run.data.tags.get(store.DATE, ""), run.data.tags.get(store.ENTRY)
        if not entry or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            untagged += 1
            continue
        latest[(date, entry)] = run
    tracked = tracked_metrics(client, nights[-1])
    series: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for (date, entry), run in sorted(latest.items()):
        for metric, value in run.data.metrics.items():
            if tracked is None or metric in tracked:
                series.setdefault(metric, {}).setdefault(entry, []).append((date, value))
    names = ", ".join(sorted(client.get_experiment(home).name for home in homes))
    note = "" if series else f"No run in {names} has tracked metrics and {store.DATE}/{store.ENTRY} tags."
    if untagged:
        note += f" {untagged} runs in {names} without a YYYY-MM-DD {store.DATE} or a {store.ENTRY} tag were left out."
    return Nightly(series=series, note=note.strip())


def tracked_metrics(client: MlflowClient, night: Run) -> set[str] | None:
    """The metrics a night's suite (its `suite.yaml` artifact) gives tolerances, or None if it has no such file."""
    try:
        suite = yaml.safe_load(Path(client.download_artifacts(night.info.run_id, "suite.yaml")).read_text())
    except (MlflowException, OSError, yaml.YAMLError):
        return None
    tolerances = suite.get("tolerances") if isinstance(suite, dict) else None
    return set(tolerances) if isinstance(tolerances, dict) and tolerances else None


def collect(
    tracking_uri: str, name: str, metric: str | None = None, mode: str | None = None, mlflow_url: str | None = None
) -> ReportData:
    """Everything the report of experiment or sweep `name` shows.

    Args:
        tracking_uri: the MLflow store (an SQLite file must already exist: reading never creates one).
        name: an experiment name, else a sweep name.
        metric: the validation metric to rank by and plot per epoch (default: the sweep's, else val_acc).
        mode: "max" or "min" (default: the sweep's mode for its own metric, else "max").
        mlflow_url: the MLflow UI to link runs into (default: the tracking URI when it is a server's).

    Raises:
        ReportError: a missing store, no experiment or sweep of that name, or one with no runs; an `mlflow_url`
            that is not an http(s) address.
    """
    if mlflow_url and not mlflow_url.startswith(("http://", "https://")):
        raise ReportError(f"--mlflow-url {mlflow_url!r}: expected the MLflow UI's address, e.g. http://127.0.0.1:5000")
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
    address = ui_address(tracking_uri, mlflow_url)
    return ReportData(title, tracking_uri, metric, mode, rows, curves, nightly_history(client), address)
