"""Tonight against the baseline: per entry and metric, the median of the last K passed nights, under a tolerance.

Pure functions over plain data, so the rules are tested without MLflow:
- a metric with no history is `new`: tonight's value starts its baseline, and passes;
- a tracked metric that tonight did not record (or recorded as NaN) is `missing`, a failure:
  a metric that silently disappears would hide every later regression;
- otherwise it is `regressed` when it moved in its worse direction by more than the tolerance allows.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

from geosweep.nightly.suite import Tolerance

Status = Literal["ok", "new", "missing", "regressed"]
FAILING: tuple[Status, ...] = ("missing", "regressed")

# Float noise must not turn a change of exactly the tolerance into a regression.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Comparison:
    """One tracked metric of one entry: tonight's value, its baseline and the verdict."""

    entry: str
    metric: str
    current: float | None
    baseline: float | None  # median over `nights`
    nights: int  # past nights the baseline is the median of
    allowed: float | None  # the tolerance at this baseline, in the metric's units
    better: Literal["higher", "lower"]
    status: Status

    @property
    def change(self) -> float | None:
        """Tonight minus the baseline (signed; which sign is worse depends on `better`)."""
        return None if self.current is None or self.baseline is None else self.current - self.baseline


def baseline(history: list[float], window: int) -> tuple[float, int] | None:
    """The median of the newest `window` finite values (history is newest first) and how many it took."""
    values = [value for value in history if math.isfinite(value)][:window]
    return (statistics.median(values), len(values)) if values else None


def compare_metric(
    entry: str, metric: str, current: float | None, history: list[float], tolerance: Tolerance, window: int
) -> Comparison:
    """Tonight's value of one metric against its baseline.

    Args:
        entry: the suite entry's name.
        metric: the metric's name.
        current: tonight's value; None when the entry did not record it.
        history: the metric's values on past passed nights, newest first.
        tolerance: how far the metric may move in its worse direction.
        window: K, how many of them the baseline takes.
    """
    if current is not None and not math.isfinite(current):
        current = None
    base = baseline(history, window)
    if base is None:
        return Comparison(
            entry, metric, current, None, 0, None, tolerance.better, "missing" if current is None else "new"
        )
    median, nights = base
    allowed = tolerance.allowed(median)
    if current is None:
        return Comparison(entry, metric, None, median, nights, allowed, tolerance.better, "missing")
    worse_by = median - current if tolerance.better == "higher" else current - median
    status: Status = "regressed" if worse_by > allowed + _EPSILON * max(1.0, abs(median)) else "ok"
    return Comparison(entry, metric, current, median, nights, allowed, tolerance.better, status)


def compare_entry(
    entry: str,
    metrics: tuple[str, ...],
    current: dict[str, float],
    history: list[dict[str, float]],
    tolerances: dict[str, Tolerance],
    window: int,
) -> list[Comparison]:
    """Every tracked metric of one entry.

    Args:
        entry: the suite entry's name.
        metrics: the entry's tracked metrics, each compared.
        current: the metrics tonight's run of the entry recorded.
        history: the metrics of the entry's runs on past passed nights, newest first;
            a night that lacks a metric is skipped for that metric.
        tolerances: metric -> its tolerance (every tracked metric has one).
        window: K, how many past nights a baseline takes.
    """
    comparisons = []
    for metric in metrics:
        values = [night[metric] for night in history if metric in night]
        comparisons.append(compare_metric(entry, metric, current.get(metric), values, tolerances[metric], window))
    return comparisons


def night_status(comparisons: list[Comparison], failed_entries: dict[str, str]) -> Literal["passed", "regressed"]:
    """A night passes when every entry ran and no tracked metric regressed or went missing."""
    failing = failed_entries or any(c.status in FAILING for c in comparisons)
    return "regressed" if failing else "passed"
