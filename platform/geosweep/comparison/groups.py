"""Configurations grouped over seeds (mean +- std, never best-of), the result columns, and the table as text."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable

from geosweep.comparison.rows import SEED_KEY, Row, configuration_label


def protocol_prefix(metric: str) -> str:
    """Where a validation metric's per-protocol test results live: `val_acc` -> `test_acc/`, `val_gap` -> `test_gap/`.

    Returns:
        The prefix of those metrics' names.
    """
    return "test_" + metric.removeprefix("val_") + "/"


def result_columns(metric: str, metric_names: Iterable[str]) -> list[str]:
    """The per-protocol test results of `metric` and the invariance certificate, as far as runs logged them.

    `val_acc` gives `test_acc/<protocol>` (classification), `val_gap` gives `test_gap/<variant>` (TSP).
    """
    names = set(metric_names)
    protocols = sorted(n for n in names if n.startswith(protocol_prefix(metric)))
    return protocols + sorted(n for n in names if n.startswith("invariance/"))


def varying_axes(rows: list[Row]) -> list[str]:
    """Axes (all but the seed) that take more than one value over `rows`."""
    keys = sorted({key for row in rows for key in row.axes} - {SEED_KEY})
    return [key for key in keys if len({str(row.axes.get(key)) for row in rows}) > 1]


def mean_std(values: list[float]) -> tuple[float, float] | None:
    """(mean, population std) of `values`, or None when there are none."""
    return (statistics.mean(values), statistics.pstdev(values)) if values else None


def group_rows(rows: list[Row], metric: str, mode: str, columns: Iterable[str]) -> list[dict]:
    """Rows of the same configuration (all but the seed) merged: mean +- std over seeds, best first.

    Args:
        rows: one per run.
        metric: the ranking metric.
        mode: "max" or "min" (which end of `metric` is best).
        columns: further metrics to aggregate.

    Returns:
        One dict per configuration: `configuration`, `rows` (its runs), `seeds`, `failed`, `stopped`, `seconds`,
        `errors`, and (mean, std) or None for `metric` and each column.
    """
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[configuration_label(row)].append(row)
    summary = []
    for key, members in groups.items():
        finished = [m for m in members if m.status != "failed"]

        def stat(name: str, finished: list[Row] = finished) -> tuple[float, float] | None:
            return mean_std([m.metrics[name] for m in finished if name in m.metrics])

        summary.append(
            {
                "configuration": key,
                "rows": members,
                "seeds": len(members),
                "failed": len(members) - len(finished),
                "stopped": sum(m.status == "stopped early" for m in members),
                metric: stat(metric),
                **{c: stat(c) for c in columns},
                "seconds": mean_std([m.seconds for m in members if m.seconds is not None]),
                "errors": sorted({m.error for m in members if m.error}),
            }
        )
    sign = -1 if mode == "max" else 1
    summary.sort(key=lambda g: (g[metric] is None, sign * g[metric][0] if g[metric] else 0))
    return summary


def table_cells(groups: list[dict], metric: str, columns: list[str]) -> tuple[list[str], list[list[str]]]:
    """The grouped configurations as text: (header, one row of cells per configuration), for markdown and HTML."""

    def cell(value: tuple[float, float] | None) -> str:
        return "-" if value is None else f"{value[0]:.3g} +- {value[1]:.2g}"  # .3g: invariance errors are tiny

    header = ["configuration", "seeds", metric, *columns, "trial s", "status"]
    rows = []
    for g in groups:
        failed = f"{g['failed']} failed" if g["failed"] else ""
        stopped = f"{g['stopped']} stopped early" if g["stopped"] else ""
        status = "; ".join(c for c in (failed, stopped) if c) or "finished"
        if g["errors"]:
            status += ": " + "; ".join(g["errors"])
        seconds = "-" if g["seconds"] is None else f"{g['seconds'][0]:.0f}"
        configuration = g["configuration"] or "(one configuration)"
        rows.append([configuration, str(g["seeds"]), cell(g[metric]), *(cell(g[c]) for c in columns), seconds, status])
    return header, rows
