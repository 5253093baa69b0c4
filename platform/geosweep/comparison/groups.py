"""Configurations grouped over seeds (mean, sample SD and 95 % interval, never best-of), columns and table text.

Spread over seeds is the sample standard deviation (ddof 1: at 3 seeds the population one understates it by
18 %) and the t-interval of the mean; whether a configuration is distinguishable from the best is Welch's
two-sided t-test at ALPHA (scipy).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats

from geosweep.comparison.rows import SEED_KEY, Row, configuration_label

ALPHA = 0.05  # the intervals' and the test's level: 95 % intervals, "~ best" where p >= 5 %
# Shown beside a ranking metric, as ModelNet40 / ScanObjectNN tables pair overall and mean per-class accuracy.
COMPANIONS = {"val_acc": ("val_mean_class_acc",)}


@dataclass(frozen=True)
class Spread:
    """One metric of one configuration over its seeds (finished runs that logged it; never empty)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """The mean over seeds."""
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        """The sample standard deviation (ddof 1); NaN for one seed, which has no spread to show."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def half_width(self) -> float:
        """Half the width of the 95 % t-interval of the mean: t(0.975, n - 1) sd / sqrt(n); NaN for one seed."""
        n = len(self.values)
        return stats.t.ppf(1 - ALPHA / 2, n - 1) * self.sd / math.sqrt(n) if n > 1 else math.nan


def spread(values: Iterable[float]) -> Spread | None:
    """`values` as a Spread, or None when there are none."""
    values = tuple(values)
    return Spread(values) if values else None


def welch_p(best: Spread, other: Spread) -> float | None:
    """Two-sided p-value of Welch's t-test that `other` has the mean of `best`; None under two seeds each.

    Two constant sets (no spread at all) are the same (p = 1) when their means are, else different (p = 0):
    the t statistic is 0/0 or +-inf there.
    """
    if min(len(best.values), len(other.values)) < 2:
        return None
    if best.sd == 0 and other.sd == 0:
        return 1.0 if best.mean == other.mean else 0.0
    return float(stats.ttest_ind(other.values, best.values, equal_var=False).pvalue)


def spread_text(value: Spread | None, digits: str = ".3g") -> str:
    """'mean +- sd [low, high]' (the 95 % interval), 'value (n = 1)' for one seed (no spread to show), '-' for none.

    Significant digits by default: invariance errors are tiny.
    """
    if value is None:
        return "-"
    if len(value.values) == 1:
        return f"{value.mean:{digits}} (n = 1)"
    low, high = value.mean - value.half_width, value.mean + value.half_width
    return f"{value.mean:{digits}} +- {value.sd:{digits}} [{low:{digits}}, {high:{digits}}]"


def protocol_prefix(metric: str) -> str:
    """Where a validation metric's per-protocol test results live: `val_acc` -> `test_acc/`, `val_gap` -> `test_gap/`.

    Returns:
        The prefix of those metrics' names.
    """
    return "test_" + metric.removeprefix("val_") + "/"


def result_columns(metric: str, metric_names: Iterable[str]) -> list[str]:
    """`metric`'s companions, the per-protocol test results of both, and the certificate, as far as runs logged them.

    `val_acc` gives `val_mean_class_acc`, `test_acc/<protocol>` and `test_mean_class_acc/<protocol>`
    (classification); `val_gap` gives `test_gap/<variant>` (TSP).
    """
    names = set(metric_names)
    companions = [name for name in COMPANIONS.get(metric, ()) if name in names]
    protocols = [sorted(n for n in names if n.startswith(protocol_prefix(m))) for m in (metric, *companions)]
    return (
        companions + [n for group in protocols for n in group] + sorted(n for n in names if n.startswith("invariance/"))
    )


def varying_axes(rows: list[Row]) -> list[str]:
    """Axes (all but the seed) that take more than one value over `rows`."""
    keys = sorted({key for row in rows for key in row.axes} - {SEED_KEY})
    return [key for key in keys if len({str(row.axes.get(key)) for row in rows}) > 1]


def group_rows(rows: list[Row], metric: str, mode: str, columns: Iterable[str]) -> list[dict]:
    """Rows of the same configuration (all but the seed) merged over seeds, best mean first.

    Args:
        rows: one per run.
        metric: the ranking metric.
        mode: "max" or "min" (which end of `metric` is best).
        columns: further metrics to aggregate.

    Returns:
        One dict per configuration: `configuration`, `rows` (its runs), `seeds`, `failed`, `stopped`, `seconds`,
        `errors`, a Spread or None for `metric`, each column and `seconds`, and `p_vs_best`: Welch's p-value
        against the best configuration's `metric` (None for the best itself and where it cannot be tested).
    """
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[configuration_label(row)].append(row)
    summary = []
    for key, members in groups.items():
        finished = [m for m in members if m.status != "failed"]

        def stat(name: str, finished: list[Row] = finished) -> Spread | None:
            return spread(m.metrics[name] for m in finished if name in m.metrics)

        summary.append(
            {
                "configuration": key,
                "rows": members,
                "seeds": len(members),
                "failed": len(members) - len(finished),
                "stopped": sum(m.status == "stopped early" for m in members),
                metric: stat(metric),
                **{c: stat(c) for c in columns},
                "seconds": spread(m.seconds for m in members if m.seconds is not None),
                "errors": sorted({m.error for m in members if m.error}),
            }
        )
    sign = -1 if mode == "max" else 1
    summary.sort(key=lambda g: (g[metric] is None, sign * g[metric].mean if g[metric] else 0))
    best = summary[0][metric] if summary else None
    for rank, group in enumerate(summary):
        tested = rank > 0 and best is not None and group[metric] is not None
        group["p_vs_best"] = welch_p(best, group[metric]) if tested else None
    return summary


def versus_best(group: dict, rank: int, metric: str) -> str:
    """The leaderboard's 'vs best' cell: `best`, `~ best` (not distinguishable at ALPHA), `worse`, or `-`."""
    if group[metric] is None:
        return "-"
    if rank == 0:
        return "best"
    p = group["p_vs_best"]
    if p is None:
        return "-"  # under two seeds on one side: nothing to test
    return f"~ best (p={p:.3g})" if p >= ALPHA else f"worse (p={p:.3g})"


def table_cells(groups: list[dict], metric: str, columns: list[str]) -> tuple[list[str], list[list[str]]]:
    """The grouped configurations as text: (header, one row of cells per configuration), for markdown and HTML."""
    header = ["configuration", "seeds", metric, "vs best", *columns, "trial s", "status"]
    rows = []
    for rank, g in enumerate(groups):
        failed = f"{g['failed']} failed" if g["failed"] else ""
        stopped = f"{g['stopped']} stopped early" if g["stopped"] else ""
        status = "; ".join(c for c in (failed, stopped) if c) or "finished"
        if g["errors"]:
            status += ": " + "; ".join(g["errors"])
        seconds = "-" if g["seconds"] is None else f"{g['seconds'].mean:.0f}"
        configuration = g["configuration"] or "(one configuration)"
        rows.append(
            [
                configuration,
                str(g["seeds"]),
                spread_text(g[metric]),
                versus_best(g, rank, metric),
                *(spread_text(g[c]) for c in columns),
                seconds,
                status,
            ]
        )
    return header, rows
