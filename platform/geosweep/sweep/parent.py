"""What a sweep's MLflow parent run says about the sweep, in the places the MLflow UI shows.

At the start: the sweep's definition as params (each axis's domain, seeds, searcher, scheduler, metric, mode) and
tags that hold for every trial (an `axis.*` tag only for an axis the sweep does not vary). At the end: the best
configuration's mean metric (`best/<metric>`) and its axes as params (`best.<param>`), the leaderboard as the run's
description (`mlflow.note.content`) and as a sortable table (`leaderboard_table.json`, mlflow.log_table).
"""

from __future__ import annotations

import json

import mlflow.entities
from mlflow.tracking import MlflowClient

from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.leaderboard import Leaderboard
from geosweep.sweep.naming import axis_values, flow
from geosweep.tracking.mlflow_run import config_tags, lineage_tags

DESCRIPTION_TAG = "mlflow.note.content"
TABLE = "leaderboard_table.json"
MAX_TAG = 8000  # MLflow's limit on a tag's value
# MLflow params cannot change: a resumed sweep that finds another best says so here (best_config.yaml is current).
BEST_CHANGED_TAG = "sweep.best_changed"


def sweep_params(sweep: SweepConfig) -> dict[str, str]:
    """The sweep's definition as params: `space.<path>` (its domain), seeds, searcher.*, scheduler.*, metric, mode."""
    params = {f"space.{path}": f"{d.kind} {flow(list(getattr(d, d.kind)))}" for path, d in sweep.space.items()}
    params |= {"seeds": str(sweep.seeds), "metric": sweep.metric, "mode": sweep.mode}
    for part in ("searcher", "scheduler"):
        params |= {f"{part}.{key}": str(value) for key, value in getattr(sweep, part).model_dump(mode="json").items()}
    return params


def shared_tags(sweep: SweepConfig) -> dict[str, str]:
    """The base config's lineage tags with only the config tags (axes, world size, batch, seed) all trials share.

    Each axis is tried at every one of its values (a range at its bounds) from the config that holds every
    axis's first value; a config tag that any of them changes varies over the sweep and is left out.
    """
    axes = axis_values(sweep)
    first = {path: values[0] for path, values in axes.items()}
    shared = config_tags(trial_config(sweep, first))
    for path, values in axes.items():
        for value in values[1:]:
            varied = config_tags(trial_config(sweep, {**first, path: value}))
            shared = {key: tag for key, tag in shared.items() if varied[key] == tag}
    lineage = {key: tag for key, tag in lineage_tags(sweep.base).items() if key not in config_tags(sweep.base)}
    return {**lineage, **shared}


def record_summary(client: MlflowClient, parent_run_id: str, sweep: SweepConfig, board: Leaderboard) -> None:
    """Log the best configuration, the leaderboard as description and as a sortable table on the parent run."""
    if board.best_value is not None:
        client.log_metric(parent_run_id, f"best/{sweep.metric}", board.best_value)
    best = {f"best.{key}": str(value) for key, value in board.best_axes.items()}
    held = client.get_run(parent_run_id).data.params
    new = [mlflow.entities.Param(key, value) for key, value in best.items() if key not in held]
    if new:
        client.log_batch(parent_run_id, params=new)
    changed = sorted(key for key, value in best.items() if held.get(key, value) != value)
    if changed:
        client.set_tag(parent_run_id, BEST_CHANGED_TAG, f"{', '.join(changed)}: see best_config.yaml"[:MAX_TAG])
    client.set_tag(parent_run_id, DESCRIPTION_TAG, description(board.markdown))
    log_table(client, parent_run_id, board.table)


def description(markdown: str) -> str:
    """The leaderboard as the run's description, cut to MLflow's tag limit with a pointer to the whole."""
    if len(markdown) <= MAX_TAG:
        return markdown
    tail = "\n\n(cut here: the whole table is in leaderboard.md)\n"
    return markdown[: markdown.rfind("\n", 0, MAX_TAG - len(tail))] + tail


def log_table(client: MlflowClient, run_id: str, table: dict[str, list]) -> None:
    """Log `table` with client.log_table, replacing the run's earlier one (log_table would append to it).

    Dots in column names become slashes (`optimizer.lr` -> `optimizer/lr`): MLflow's table view reads a dotted
    name as a path into nested data and shows the column empty.
    """
    table = {name.replace(".", "/"): values for name, values in table.items()}
    if TABLE in {artifact.path for artifact in client.list_artifacts(run_id)}:  # a resumed sweep records again
        rows = [list(row) for row in zip(*table.values(), strict=True)]
        client.log_text(run_id, json.dumps({"columns": list(table), "data": rows}), TABLE)  # log_table's format
    else:
        client.log_table(run_id, table, TABLE)
