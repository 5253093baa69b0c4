"""The sweep's leaderboard: configurations grouped over seeds (mean +- std, never best-of), on the parent run.

Status comes from Tune (failed, stopped early by the scheduler, finished); the
numbers from each trial's MLflow run, which also holds what is computed after
the last epoch (per-protocol test results, the invariance certificate). The
report (geosweep.report) groups MLflow runs with the same functions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from mlflow.tracking import MlflowClient
from ray import tune

from geosweep.config import dump_yaml
from geosweep.report.figures import parallel_coordinates, standalone_html
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.space import SEED_KEY, decode


def protocol_prefix(metric: str) -> str:
    """Where a validation metric's per-protocol test results live: `val_acc` -> `test_acc/`, `val_gap` -> `test_gap/`."""
    return "test_" + metric.removeprefix("val_") + "/"


def result_columns(metric: str, metric_names: Iterable[str]) -> list[str]:
    """The per-protocol test results of `metric` and the invariance certificate, as far as runs logged them.

    `val_acc` gives `test_acc/<protocol>` (classification), `val_gap` gives `test_gap/<variant>` (TSP).
    """
    names = set(metric_names)
    protocols = sorted(n for n in names if n.startswith(protocol_prefix(metric)))
    return protocols + sorted(n for n in names if n.startswith("invariance/"))


def varying_axes(rows: list[dict]) -> list[str]:
    """Sampled keys (all but the seed) that take more than one value over `rows`."""
    keys = sorted({key for row in rows for key in row["sampled"]} - {SEED_KEY})
    return [key for key in keys if len({str(row["sampled"].get(key)) for row in rows}) > 1]


def trial_rows(sweep: SweepConfig, results: tune.ResultGrid, client: MlflowClient, parent_run_id: str) -> list[dict]:
    """One row per trial: its sampled values, status, seconds and final MLflow metrics."""
    runs = client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
    )
    by_trial = {run.data.tags.get("sweep.trial_id"): run for run in runs}
    rows = []
    for result in results:
        sampled = {k: v for k, v in (result.config or {}).items() if k not in ("sweep", "parent_run_id")}
        run = by_trial.get((result.metrics or {}).get("trial_id"))  # none if it failed before its first epoch
        epochs = (result.metrics or {}).get("epoch", 0)
        status = "failed" if result.error else ("stopped early" if epochs < sweep.base.epochs else "finished")
        if run is not None and run.info.status == "RUNNING":  # the scheduler ended its driver mid-run
            client.set_terminated(run.info.run_id, "FAILED" if result.error else "KILLED")
        rows.append({
            "sampled": sampled, "status": status, "epochs": epochs, "seconds": (result.metrics or {}).get("time_total_s"),
            "metrics": run.data.metrics if run else {}, "error": str(result.error).splitlines()[0] if result.error else "",
        })  # fmt: skip
    return rows


def configuration_label(row: dict) -> str:
    """What a row's configuration is called: its sampled values but the seed."""
    return ", ".join(f"{k}={v}" for k, v in sorted(row["sampled"].items()) if k != SEED_KEY)


def group_rows(rows: list[dict], metric: str, mode: str, columns: Iterable[str]) -> list[dict]:
    """Rows of the same configuration (all but the seed) merged: mean +- std over seeds, best first.

    Args:
        rows: one per trial/run: `sampled` values, `status`, `seconds`, `metrics`, `error`.
        metric: the ranking metric; mode: "max" or "min" (which end of it is best).
        columns: further metrics to aggregate.

    Returns:
        One dict per configuration: `configuration`, `sampled`, `seeds`, `failed`, `stopped`, `seconds`,
        `errors`, and (mean, std) or None for `metric` and each column.
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[configuration_label(row)].append(row)
    summary = []
    for key, members in groups.items():
        finished = [m for m in members if m["status"] != "failed"]

        def stat(name: str) -> tuple[float, float] | None:
            values = [m["metrics"][name] for m in finished if name in m["metrics"]]
            return (statistics.mean(values), statistics.pstdev(values)) if values else None

        summary.append({
            "configuration": key, "sampled": members[0]["sampled"], "seeds": len(members),
            "failed": len(members) - len(finished), "stopped": sum(m["status"] == "stopped early" for m in members),
            metric: stat(metric), **{c: stat(c) for c in columns},
            "seconds": stat_of([m["seconds"] for m in members if m["seconds"] is not None]),
            "errors": sorted({m["error"] for m in members if m["error"]}),
        })  # fmt: skip
    sign = -1 if mode == "max" else 1
    summary.sort(key=lambda g: (g[metric] is None, sign * g[metric][0] if g[metric] else 0))
    return summary


def stat_of(values: list[float]) -> tuple[float, float] | None:
    return (statistics.mean(values), statistics.pstdev(values)) if values else None


def table_cells(groups: list[dict], metric: str, columns: list[str]) -> tuple[list[str], list[list[str]]]:
    """The leaderboard as text: (header, one row of cells per configuration); markdown and the report share it."""

    def cell(value: tuple[float, float] | None) -> str:
        return "-" if value is None else f"{value[0]:.3g} +- {value[1]:.2g}"  # .3g: invariance errors are tiny

    header = ["configuration", "seeds", metric, *columns, "trial s", "status"]
    rows = []
    for g in groups:
        status = "; ".join(filter(None, [f"{g['failed']} failed" if g["failed"] else "",
                                         f"{g['stopped']} stopped early" if g["stopped"] else ""])) or "finished"  # fmt: skip
        if g["errors"]:
            status += ": " + "; ".join(g["errors"])
        seconds = "-" if g["seconds"] is None else f"{g['seconds'][0]:.0f}"
        rows.append([g["configuration"] or "(one configuration)", str(g["seeds"]), cell(g[metric]),
                     *(cell(g[c]) for c in columns), seconds, status])  # fmt: skip
    return header, rows


def markdown(sweep: SweepConfig, groups: list[dict], columns: list[str]) -> str:
    header, rows = table_cells(groups, sweep.metric, columns)
    lines = [f"# Sweep `{sweep.name}`: {sweep.metric} ({sweep.mode}), mean +- std over seeds", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    lines += ["| " + " | ".join([f"`{cells[0]}`", *cells[1:]]) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def write_leaderboard(sweep: SweepConfig, results: tune.ResultGrid, uri: str, parent_run_id: str) -> str:
    """Log `leaderboard.md`, the best configuration (`best_config.yaml`) and `parallel_coordinates.html` on the
    parent run; return the table.
    """
    client = MlflowClient(uri)
    rows = trial_rows(sweep, results, client, parent_run_id)
    columns = result_columns(sweep.metric, (name for row in rows for name in row["metrics"]))
    groups = group_rows(rows, sweep.metric, sweep.mode, columns)
    table = markdown(sweep, groups, columns)
    client.log_text(parent_run_id, table, "leaderboard.md")
    figure = parallel_coordinates(rows, varying_axes(rows), sweep.metric, sweep.mode, title=f"Sweep {sweep.name}")
    client.log_text(parent_run_id, standalone_html(figure), "parallel_coordinates.html")
    best = next((g for g in groups if g[sweep.metric] is not None), None)
    if best is not None:
        values: dict[str, Any] = {k: v for k, v in best["sampled"].items() if k != SEED_KEY}
        client.log_text(parent_run_id, dump_yaml(trial_config(sweep, decode(sweep, values))), "best_config.yaml")
    failed = sum(g["failed"] for g in groups)
    client.set_terminated(parent_run_id, "FAILED" if failed else "FINISHED")
    return table
