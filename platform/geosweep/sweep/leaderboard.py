"""The sweep's leaderboard: configurations grouped over seeds (mean +- std, never best-of), on the parent run.

Status comes from Tune (failed, stopped early by the scheduler, finished); the
numbers from each trial's MLflow run, which also holds what is computed after
the last epoch (per-protocol test accuracy, the invariance certificate).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from mlflow.tracking import MlflowClient
from ray import tune

from geosweep.config import dump_yaml
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.space import SEED_KEY, decode

COLUMNS = ("test_acc/z", "test_acc/so3", "invariance/pred_agreement")


def trial_rows(sweep: SweepConfig, results: tune.ResultGrid, client: MlflowClient, parent_run_id: str) -> list[dict]:
    """One row per trial: its sampled values, status, seconds and final MLflow metrics."""
    runs = client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
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


def group_rows(sweep: SweepConfig, rows: list[dict]) -> list[dict]:
    """Rows of the same configuration (all but the seed) merged: mean +- std over seeds, best first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        key = ", ".join(f"{k}={v}" for k, v in sorted(row["sampled"].items()) if k != SEED_KEY)
        groups[key].append(row)
    summary = []
    for key, members in groups.items():
        finished = [m for m in members if m["status"] != "failed"]

        def stat(name: str) -> tuple[float, float] | None:
            values = [m["metrics"][name] for m in finished if name in m["metrics"]]
            return (statistics.mean(values), statistics.pstdev(values)) if values else None

        summary.append({
            "configuration": key, "sampled": members[0]["sampled"], "seeds": len(members),
            "failed": len(members) - len(finished), "stopped": sum(m["status"] == "stopped early" for m in members),
            sweep.metric: stat(sweep.metric), **{c: stat(c) for c in COLUMNS},
            "seconds": stat_of([m["seconds"] for m in members if m["seconds"] is not None]),
            "errors": sorted({m["error"] for m in members if m["error"]}),
        })  # fmt: skip
    sign = -1 if sweep.mode == "max" else 1
    summary.sort(key=lambda g: (g[sweep.metric] is None, sign * g[sweep.metric][0] if g[sweep.metric] else 0))
    return summary


def stat_of(values: list[float]) -> tuple[float, float] | None:
    return (statistics.mean(values), statistics.pstdev(values)) if values else None


def markdown(sweep: SweepConfig, groups: list[dict]) -> str:
    def cell(value: tuple[float, float] | None) -> str:
        return "-" if value is None else f"{value[0]:.3f} +- {value[1]:.3f}"

    header = ["configuration", "seeds", sweep.metric, *COLUMNS, "trial s", "status"]
    lines = [f"# Sweep `{sweep.name}`: {sweep.metric} ({sweep.mode}), mean +- std over seeds", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    for g in groups:
        status = "; ".join(filter(None, [f"{g['failed']} failed" if g["failed"] else "",
                                         f"{g['stopped']} stopped early" if g["stopped"] else ""])) or "finished"  # fmt: skip
        if g["errors"]:
            status += ": " + "; ".join(g["errors"])
        cells = [f"`{g['configuration']}`", str(g["seeds"]), cell(g[sweep.metric]), *(cell(g[c]) for c in COLUMNS),
                 "-" if g["seconds"] is None else f"{g['seconds'][0]:.0f}", status]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(sweep: SweepConfig, results: tune.ResultGrid, uri: str, parent_run_id: str) -> str:
    """Log `leaderboard.md` and the best configuration (`best_config.yaml`) on the parent run; return the table."""
    client = MlflowClient(uri)
    groups = group_rows(sweep, trial_rows(sweep, results, client, parent_run_id))
    table = markdown(sweep, groups)
    client.log_text(parent_run_id, table, "leaderboard.md")
    best = next((g for g in groups if g[sweep.metric] is not None), None)
    if best is not None:
        values: dict[str, Any] = {k: v for k, v in best["sampled"].items() if k != SEED_KEY}
        client.log_text(parent_run_id, dump_yaml(trial_config(sweep, decode(sweep, values))), "best_config.yaml")
    failed = sum(g["failed"] for g in groups)
    client.set_terminated(parent_run_id, "FAILED" if failed else "FINISHED")
    return table
