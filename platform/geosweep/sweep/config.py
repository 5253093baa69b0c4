"""Sweep configs: a base run config, a search space over its fields, seeds, a searcher and a scheduler.

    name: quickstart
    base: ../train/shapes_pointnet_tinv.yaml     # relative to this file, or an inline mapping
    space:
      representation: {grid: [{name: raw}, {name: tinv_mds}, {name: fa}]}
      optimizer.lr: {loguniform: [0.0003, 0.003]}
    seeds: 2
    searcher: {name: random, num_samples: 1}
    scheduler: {name: asha, grace_period: 1, reduction_factor: 2}

A space key is a dotted config path; its value picks one domain. Grid values may
be whole component specs ({name: mip, kwargs: {...}}), which is how conditional
fields are written: kwargs travel with the component they belong to, so no trial
gets a meaningless combination.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, model_validator

from geosweep.config import (
    ConfigError,
    RunConfig,
    StrictModel,
    apply_overrides,
    format_errors,
    parse_run_config,
    read_yaml_mapping,
    set_values,
)
from geosweep.registry import TASKS
from geosweep.tasks.base import LOOP_METRICS


class Domain(StrictModel):
    """Exactly one of: grid (every value), choice, uniform, loguniform, randint ([low, high))."""

    grid: list[Any] | None = Field(None, min_length=1)
    choice: list[Any] | None = Field(None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Domain:
        set_fields = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(set_fields) != 1:
            raise ValueError(
                f"give exactly one of grid, choice, uniform, loguniform, randint (got {set_fields or 'none'})"
            )
        continuous = self.uniform or self.loguniform
        if continuous is not None and not all(math.isfinite(bound) for bound in continuous):
            raise ValueError(f"bounds must be finite numbers, got {list(continuous)}")
        bounds = continuous or self.randint
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be [low, high] with low < high, got {list(bounds)}")
        if self.loguniform is not None and min(self.loguniform) <= 0:
            raise ValueError(f"loguniform bounds must be positive, got {list(self.loguniform)}")
        return self

    @property
    def kind(self) -> str:
        """The name of the one distribution this axis is given by."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


# Model-based searchers propose one point at a time from their own model of the space: they take no grid.
SEARCHERS_WITHOUT_GRID = ("optuna", "hyperopt")


class SearcherSpec(StrictModel):
    """How Tune picks trials: a grid, random draws, or a model-based searcher."""

    name: Literal["grid", "random", "optuna", "hyperopt"] = "grid"
    num_samples: int = Field(1, ge=1)  # grid/random: repeats of the whole grid; optuna/hyperopt: trials


class SchedulerSpec(StrictModel):
    """How Tune stops trials early (none for fifo)."""

    name: Literal["fifo", "asha", "median_stop"] = "fifo"
    grace_period: int = Field(1, ge=1)  # epochs every trial gets before it can be stopped
    reduction_factor: float = Field(2.0, gt=1)  # asha only


class ResourcesSpec(StrictModel):
    """What each trial's driver holds besides its workers, and where it may run."""

    trial_driver_cpus: float = Field(0.05, gt=0, le=1)  # the Tune trial that drives a TorchTrainer
    # Custom resources for trial drivers, e.g. {trial_driver: 0.01} to keep them on cluster.yaml's on-demand nodes.
    trial_driver_resources: dict[str, float] = {}
    max_concurrent_trials: int | None = Field(None, ge=1)  # None: derived from the cluster's CPUs
    # A one-worker CPU trial trains in its Tune trial's own process, holding the worker's resources: Train's
    # controller and worker group would add several seconds of start-up per trial and nothing else
    # (train/session.py). false: every trial on Ray Train.
    one_worker_in_trial: bool = True


class SweepConfig(StrictModel):
    """A sweep: a base run config, the axes and hyperparameters Tune varies, its searcher and scheduler."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    base: RunConfig
    space: dict[str, Domain] = {}
    seeds: int = Field(1, ge=1)  # every configuration runs with seeds 0..k-1; reports aggregate over them
    metric: str = "val_acc"
    mode: Literal["max", "min"] = "max"
    searcher: SearcherSpec = SearcherSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: ResourcesSpec = ResourcesSpec()
    storage_path: str | None = None  # None: ./ray_results on a local Ray; shared (s3://, NFS) on a multi-node cluster
    progress_interval_s: float = Field(30.0, gt=0)  # the console view prints at most one line per interval

    @model_validator(mode="after")
    def _searcher_takes_the_space(self) -> SweepConfig:
        grids = [path for path, domain in self.space.items() if domain.kind == "grid"]
        if self.searcher.name in SEARCHERS_WITHOUT_GRID and (grids or self.seeds > 1):
            what = f"grid over {grids}" if grids else f"seeds: {self.seeds} (a grid over seeds)"
            raise ValueError(
                f"searcher {self.searcher.name!r} cannot take a {what}; use choice, or searcher grid/random"
            )
        return self

    @model_validator(mode="after")
    def _metric_is_logged(self) -> SweepConfig:
        logged = (*LOOP_METRICS, *TASKS.get(self.base.task.name).epoch_metrics)
        if self.metric not in logged:
            raise ValueError(
                f"metric: {self.metric!r} is not logged every epoch by task {self.base.task.name!r}; "
                f"expected one of {', '.join(logged)}"
            )
        return self

    @model_validator(mode="after")
    def _resources_fixed(self) -> SweepConfig:
        # Ray reserves every trial's resources from the base config, before any trial exists.
        varied = [path for path in self.space if path == "scaling" or path.startswith("scaling.")]
        if varied:
            raise ValueError(f"space: {varied[0]!r} cannot vary: a sweep's trials share base.scaling; set it there")
        return self

    @model_validator(mode="after")
    def _grace_period_within_epochs(self) -> SweepConfig:
        # Tune's schedulers assert this only once the sweep is running, after its MLflow parent run exists.
        if self.scheduler.name != "fifo" and self.scheduler.grace_period > self.base.epochs:
            raise ValueError(
                f"scheduler.grace_period: {self.scheduler.grace_period} is more than base.epochs "
                f"({self.base.epochs}); expected at most {self.base.epochs}"
            )
        return self


def load_sweep_config(path: str | Path, overrides: list[str] = ()) -> SweepConfig:
    """Read a sweep YAML (base given inline or as a path relative to the file) and validate it.

    Raises:
        ConfigError: naming the file, the field and what was expected.
    """
    path = Path(path)
    raw = apply_overrides(read_yaml_mapping(path), overrides)
    if isinstance(raw.get("base"), str):
        raw["base"] = read_yaml_mapping(path.parent / raw["base"])
    try:
        return SweepConfig.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(f"{path}: invalid sweep config\n" + format_errors(err, SweepConfig)) from None


def trial_config(sweep: SweepConfig, assignment: dict[str, Any]) -> RunConfig:
    """The run config of one trial: the base with a sampled value at each space path (and the seed)."""
    raw = set_values(sweep.base.model_dump(mode="json"), assignment)
    return parse_run_config(raw, source=f"sweep {sweep.name!r}, trial {assignment}")


def checked_axes(sweep: SweepConfig) -> list[list[tuple[str, Any]]]:
    """Per space path, the values validation tries: every grid or choice value, a continuous domain's bounds."""
    axes = []
    for path, domain in sweep.space.items():
        values = domain.grid or domain.choice or list(domain.uniform or domain.loguniform or domain.randint)
        if domain.randint is not None:
            values = [domain.randint[0], domain.randint[1] - 1]  # randint's upper bound is exclusive
        axes.append([(path, value) for value in values])
    return axes


def count_trial_configurations(sweep: SweepConfig) -> int:
    """How many configurations `validate_every_trial` would check without a limit."""
    return math.prod(len(axis) for axis in checked_axes(sweep))


def validate_every_trial(sweep: SweepConfig, limit: int = 10_000) -> int:
    """Build the run config of every trial the space can produce (continuous domains at both bounds).

    Only the first `limit` combinations are built; compare with `count_trial_configurations`.

    Returns:
        How many configurations were checked.

    Raises:
        ConfigError: for the first trial whose config is invalid, naming its values.
    """
    checked = 0
    for combination in itertools.islice(itertools.product(*checked_axes(sweep)), limit):
        trial_config(sweep, dict(combination))
        checked += 1
    return checked
