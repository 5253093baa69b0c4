"""Parameter importance over a sweep's runs: Optuna's fANOVA on an in-memory study built from the rows.

Policy (docs/sweeps.md): only finished runs count, as in Optuna, whose evaluators read complete trials only.
A failed run has no value; a run the scheduler stopped early holds an earlier epoch's metric, not comparable
with the finished ones'; a running one has no final value. They are counted as left out. The parameters are the
axes that vary over the counted runs, the seed aside (its spread is the noise the estimate has to see through):
numbers become float (log scale when they span two decades) or int distributions, anything else (names,
components, a value some runs lack) a categorical one. With fewer than MIN_RUNS finished runs, or fewer than
two parameters, the estimate would be noise or true by construction: the result says so and holds no values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import optuna
from mlflow.tracking import MlflowClient

from geosweep.comparison.figures import finite
from geosweep.comparison.groups import varying_axes
from geosweep.comparison.rows import Row

# Below this, an axis whose effect equals the noise ranked first in 2 of 3 made-up sweeps (chance: 1 in 2); from
# 10 runs in 5 of 6 or more (docs/sweeps.md#parameter-importance).
MIN_RUNS = 10
METHOD = "fANOVA (optuna.importance.FanovaImportanceEvaluator, 64 trees, seed 0)"
ARTIFACT = "importance.json"


@dataclass(frozen=True)
class Importance:
    """What the runs say about which parameters move the metric.

    Attributes:
        metric: the metric whose variance is decomposed.
        values: parameter -> its share of the metric's variance (they sum to 1), most important first;
            empty when there is no estimate.
        runs: finished runs the estimate uses.
        left_out: runs left out (failed, stopped early, running, or without a finite metric).
        note: why there is no estimate; "" when there is one.
        method: how the values were computed.
    """

    metric: str
    values: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    left_out: int = 0
    note: str = ""
    method: str = METHOD


def distribution(values: list[str | None]) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one parameter's values: int, float (log over two decades) or categorical."""
    numbers = [finite(v) for v in values]
    if any(n is None for n in numbers):
        return optuna.distributions.CategoricalDistribution(sorted({"-" if v is None else v for v in values}))
    low, high = min(numbers), max(numbers)
    if all(n.is_integer() and "." not in v and "e" not in v.lower() for n, v in zip(numbers, values, strict=True)):
        return optuna.distributions.IntDistribution(int(low), int(high))
    return optuna.distributions.FloatDistribution(low, high, log=low > 0 and high / low >= 100)


def param_value(value: str | None, kind: optuna.distributions.BaseDistribution) -> object:
    """A row's text value as the distribution `kind` holds it."""
    if isinstance(kind, optuna.distributions.CategoricalDistribution):
        return "-" if value is None else value
    return int(value) if isinstance(kind, optuna.distributions.IntDistribution) else float(value)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna without its INFO lines ("A new study created in memory ...") for the block's duration."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def param_importance(rows: list[Row], metric: str, mode: str) -> Importance:
    """The importance of each parameter that varies over the finished `rows` for `metric` (see the module's policy).

    Args:
        rows: one per run (geosweep.comparison.rows.run_rows).
        metric: the metric to explain.
        mode: "max" or "min" (the study's direction; the variance decomposition does not depend on it).
    """
    counted = [row for row in rows if row.status == "finished" and finite(row.metrics.get(metric)) is not None]
    left_out = len(rows) - len(counted)
    params = varying_axes(counted)  # the seed aside
    if len(counted) < MIN_RUNS:
        note = f"{len(counted)} finished runs with {metric}: too few for an importance estimate (needs {MIN_RUNS})."
        return Importance(metric, runs=len(counted), left_out=left_out, note=note)
    if len(params) < 2:
        what = f"only {params[0]} varies" if params else "no parameter varies"
        note = f"{what} over the finished runs: nothing to rank."
        return Importance(metric, runs=len(counted), left_out=left_out, note=note)
    if len({row.metrics[metric] for row in counted}) == 1:
        note = f"{metric} is the same in every finished run: no variance to decompose."
        return Importance(metric, runs=len(counted), left_out=left_out, note=note)
    kinds = {param: distribution([row.axes.get(param) for row in counted]) for param in params}
    with quiet_optuna():
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        study.add_trials(
            optuna.trial.create_trial(
                params={param: param_value(row.axes.get(param), kind) for param, kind in kinds.items()},
                distributions=kinds,
                value=row.metrics[metric],
            )
            for row in counted
        )
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return Importance(metric, {p: float(v) for p, v in values.items()}, runs=len(counted), left_out=left_out)


def log_importance(client: MlflowClient, run_id: str, importance: Importance) -> None:
    """Log `importance` on a run: `importance/<param>` metrics and the whole result as `importance.json`."""
    metrics = {f"importance/{param}": value for param, value in importance.values.items() if math.isfinite(value)}
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)
    client.log_text(run_id, json.dumps(asdict(importance), indent=2), ARTIFACT)


def record_importance(client: MlflowClient, run_id: str, rows: list[Row], metric: str, mode: str) -> Importance:
    """Compute the importance of `rows`' parameters for `metric` and log it on run `run_id` (a sweep's parent).

    Returns:
        The importance, or why there is none.
    """
    importance = param_importance(rows, metric, mode)
    log_importance(client, run_id, importance)
    return importance
