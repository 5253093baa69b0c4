"""The nightly's MLflow records: a parent run per night, a child run per entry, and the nights before.

Tags (filterable in the MLflow UI):
- parent: `nightly.parent=true`, `nightly.suite`, `nightly.date`, `nightly.status=passed|regressed`
  (set last, so a night that never finished is no one's baseline), git SHA and dirty flag, hardware;
- child: `mlflow.parentRunId`, `nightly.suite`, `nightly.date`, `nightly.entry=<entry name>`.

A regressed night is never part of a later baseline. To accept a deliberate change
of a metric, set that night's `nightly.status` tag to `passed` (in the UI or with
the MLflow client).
"""

from __future__ import annotations

import os
import platform as stdlib_platform  # the standard library's, never our source root
import time
from pathlib import Path

import torch
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from geosweep.tracking.mlflow_run import git_lineage, terminate_run

PARENT = "nightly.parent"
SUITE = "nightly.suite"
DATE = "nightly.date"
ENTRY = "nightly.entry"
STATUS = "nightly.status"


def hardware_tags() -> dict[str, str]:
    """The driver's machine: CPU model and cores, GPU name if any (each run's `device` tag says where it trained)."""
    tags = {"hardware.cpu": cpu_model(), "hardware.cpu_cores": str(os.cpu_count())}
    if torch.cuda.is_available():
        tags["hardware.gpu"] = torch.cuda.get_device_name(0)
        tags["hardware.gpu_count"] = str(torch.cuda.device_count())
    return tags


def cpu_model() -> str:
    """The machine's CPU model, recorded so that nights on different hardware are not compared blindly."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    return stdlib_platform.processor() or stdlib_platform.machine() or "unknown"


def start_night(client: MlflowClient, experiment_id: str, suite: str, date: str, suite_yaml: str) -> str:
    """Create tonight's parent run (status RUNNING, no `nightly.status` yet).

    Returns:
        Its run id.
    """
    tags = {PARENT: "true", SUITE: suite, DATE: date, **git_lineage(), **hardware_tags()}
    run = client.create_run(experiment_id, run_name=f"{suite}-{date}", tags=tags)
    client.log_text(run.info.run_id, suite_yaml, "suite.yaml")
    return run.info.run_id


def child_tags(parent_run_id: str, suite: str, date: str, entry: str) -> dict[str, str]:
    """Tags that file an entry's run under its night."""
    return {"mlflow.parentRunId": parent_run_id, SUITE: suite, DATE: date, ENTRY: entry}


def start_child(client: MlflowClient, experiment_id: str, tags: dict[str, str], params: dict[str, str]) -> str:
    """A child run this process writes itself (a performance figure); training runs make their own."""
    run = client.create_run(
        experiment_id, run_name=f"{tags[ENTRY]}-{tags[DATE]}", tags={**tags, **git_lineage(), **hardware_tags()}
    )
    client.log_batch(run.info.run_id, params=[Param(key, value) for key, value in params.items()])
    return run.info.run_id


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """Log metrics at step 0 in one batch."""
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()])


def entry_metrics(client: MlflowClient, experiment_id: str, parent_run_id: str, entry: str) -> dict[str, float]:
    """The latest value of every metric of tonight's run of `entry` ({} when it has no run)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.`{ENTRY}` = '{entry}'",
        max_results=1,
    )
    return dict(runs[0].data.metrics) if runs else {}


def past_nights(
    client: MlflowClient, experiment_id: str, suite: str, date: str, entries: set[str], window: int
) -> dict[str, list[dict[str, float]]]:
    """Per entry, the metrics of its finished runs on passed nights of `suite` dated up to `date`, newest first.

    Reads nights from the newest back until every entry has `window` of them (a night
    that did not run an entry, e.g. before the entry was added, does not count for it).
    """
    query = f"tags.`{PARENT}` = 'true' and tags.`{SUITE}` = '{suite}' and tags.`{STATUS}` = 'passed'"
    nights = [
        run
        for run in client.search_runs([experiment_id], filter_string=query, max_results=10_000)
        if run.data.tags[DATE] <= date
    ]
    nights.sort(key=lambda run: (run.data.tags[DATE], run.info.start_time), reverse=True)
    history: dict[str, list[dict[str, float]]] = {entry: [] for entry in entries}
    for night in nights:
        if all(len(values) >= window for values in history.values()):
            break
        children = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{night.info.run_id}' and attributes.status = 'FINISHED'",
        )
        for child in children:
            entry = child.data.tags.get(ENTRY)
            if entry in history and len(history[entry]) < window:
                history[entry].append(dict(child.data.metrics))
    return history


def finish_night(client: MlflowClient, parent_run_id: str, status: str, reports: dict[str, str]) -> None:
    """Attach the reports, then set the status tag: only now can the night become a baseline."""
    for name, text in reports.items():
        client.log_text(parent_run_id, text, name)
    client.set_tag(parent_run_id, STATUS, status)
    terminate_run(client, parent_run_id, "FINISHED")
