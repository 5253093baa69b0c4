"""The sweep's leaderboard from its trial rows: configurations grouped over seeds (mean, SD, interval; never best-of).

Pure: the sweep's driver (geosweep.sweep.run) reads the rows from MLflow and logs what this builds on the parent run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geosweep.comparison.figures import finite, parallel_coordinates, standalone_html
from geosweep.comparison.groups import ALPHA, group_rows, result_columns, table_cells, varying_axes
from geosweep.comparison.rows import SEED_KEY, Row
from geosweep.config import dump_yaml
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.space import decode


@dataclass(frozen=True)
class Leaderboard:
    """What the parent run holds: the table, the parallel-coordinates page and the best configuration."""

    markdown: str
    parallel_coordinates: str  # a standalone HTML page
    best_config: str | None  # YAML; None when no configuration reported the metric
    failed: int  # trials that failed
    table: dict[str, list] = field(default_factory=dict)  # column -> a value per configuration (sortable_table)
    best_axes: dict[str, str] = field(default_factory=dict)  # the best configuration's axes (MLflow param names)
    best_value: float | None = None  # its mean of the sweep's metric over seeds


def markdown(sweep: SweepConfig, groups: list[dict], columns: list[str]) -> str:
    """The grouped configurations as a markdown table, best first."""
    header, rows = table_cells(groups, sweep.metric, columns)
    lines = [
        f"# Sweep `{sweep.name}`: {sweep.metric} ({sweep.mode}) over seeds",
        "",
        f"Cells: mean +- sample SD [{1 - ALPHA:.0%} t-interval of the mean]. vs best: `~ best` where Welch's "
        f"t-test (two-sided, {ALPHA:.0%}) cannot tell the configuration from the best, `worse` where it can.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join([f"`{cells[0]}`", *cells[1:]]) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def sortable_table(groups: list[dict], metric: str, columns: list[str]) -> dict[str, list]:
    """The leaderboard as plain columns for mlflow.log_table: axes and means as numbers where they are numbers."""
    _, cells = table_cells(groups, metric, columns)
    axes = sorted({key for g in groups for key in g["rows"][0].axes} - {SEED_KEY})

    def axis(value: str | None) -> float | str | None:
        return value if finite(value) is None else finite(value)

    def means(name: str) -> list[float | None]:
        return [finite(g[name].mean) if g[name] else None for g in groups]

    return {
        **{key: [axis(g["rows"][0].axes.get(key)) for g in groups] for key in axes},
        "seeds": [g["seeds"] for g in groups],
        metric: means(metric),
        f"{metric} sd": [finite(g[metric].sd) if g[metric] else None for g in groups],
        "p vs best": [finite(g["p_vs_best"]) for g in groups],
        **{column: means(column) for column in columns},
        "trial s": means("seconds"),
        "status": [row[-1] for row in cells],
    }


def leaderboard(sweep: SweepConfig, rows: list[Row], sampled: dict[str, dict[str, Any]]) -> Leaderboard:
    """The leaderboard of the sweep's trial runs.

    Args:
        sweep: the sweep.
        rows: one per trial run (geosweep.comparison.rows.run_rows).
        sampled: trial id -> the values Tune sampled for it, to write the best configuration's config.
    """
    columns = result_columns(sweep.metric, (name for row in rows for name in row.metrics))
    groups = group_rows(rows, sweep.metric, sweep.mode, columns)
    figure = parallel_coordinates(rows, varying_axes(rows), sweep.metric, sweep.mode, title=f"Sweep {sweep.name}")
    best = next((g for g in groups if g[sweep.metric] is not None), None)
    best_config = None
    if best is not None:
        # Its members differ only in the seed: any one that Tune saw report names the configuration.
        values = next(sampled[t] for t in (row.tags.get("sweep.trial_id") for row in best["rows"]) if t in sampled)
        best_config = dump_yaml(trial_config(sweep, decode(sweep, {k: v for k, v in values.items() if k != SEED_KEY})))
    return Leaderboard(
        markdown=markdown(sweep, groups, columns),
        parallel_coordinates=standalone_html(figure),
        best_config=best_config,
        failed=sum(g["failed"] for g in groups),
        table=sortable_table(groups, sweep.metric, columns),
        best_axes={k: v for k, v in best["rows"][0].axes.items() if k != SEED_KEY} if best else {},
        best_value=best[sweep.metric].mean if best else None,
    )
