"""The nightly suite config: training runs and performance figures, the baseline window and per-metric tolerances.

    name: nightly
    baseline_window: 5                       # K: compare with the median of the last K passed nights
    metrics: [val_acc, test_acc/so3]         # tracked for every run that names none of its own
    tolerances:                              # how far a metric may move in its worse direction
      val_acc: {better: higher, absolute: 0.05}
    run_overrides: {seed: 0}                 # run-config paths set in every run, after its own
    runs:
      shapes-{backbone}-{representation}:    # `{axis}` placeholders expand over `matrix`
        config: ../train/shapes_pointnet_raw.yaml    # relative to this file
        overrides: {epochs: 6}
        matrix:
          backbone: {pointnet: {}, dgcnn: {backbone: {name: dgcnn}}}
          representation: {raw: {}, tinv_mds: {representation: {name: tinv_mds}}}
      tsp20-raw: {config: ../train/tsp20_am_tinv.yaml, overrides: {representation.name: raw}, metrics: [val_gap]}
    performance:
      platform_overhead: {figure: platform_overhead, config: ../train/shapes_pointnet_tinv.yaml}

A derived suite (the smoke suite) holds only `extends:` and `overrides:` (dotted
suite paths, as `--set` takes them), so it cannot drift from the suite it
shrinks. Inside an overrides mapping the rest of a path is one run-config path:
`--set run_overrides.optimizer.lr=1e-6` sets the key `optimizer.lr` of `run_overrides`.
"""

from __future__ import annotations

import copy
import itertools
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from pydantic import Field, model_validator

from geosweep.config import (
    ConfigError,
    RunConfig,
    StrictModel,
    format_errors,
    load_run_config,
    parse_run_config,
    parse_set_items,
    read_yaml_mapping,
    set_values,
)

# Suite fields whose keys are dotted run-config paths (see the module docstring).
OVERRIDE_MAPPINGS = ("overrides", "run_overrides")
ENTRY_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class Tolerance(StrictModel):
    """How far a metric may move in its worse direction from its baseline: absolute + relative * |baseline|."""

    better: Literal["higher", "lower"]
    absolute: float = Field(0.0, ge=0)  # in the metric's units: accuracy is a fraction, so 0.05 = 5 points
    relative: float = Field(0.0, ge=0)  # a fraction of the baseline: 0.2 = a 20 % drop (or rise)

    def allowed(self, baseline: float) -> float:
        """The largest change from `baseline` that is not a regression."""
        return self.absolute + self.relative * abs(baseline)


class RunEntry(StrictModel):
    """Training runs: a run config file plus overrides, expanded over `matrix` (one run per combination)."""

    config: str = Field(min_length=1)  # a run config YAML, relative to the suite file that names it
    overrides: dict[str, Any] = {}  # dotted run-config path -> value
    matrix: dict[str, dict[str, dict[str, Any]]] = {}  # axis -> label -> overrides; labels fill `{axis}` in the name
    metrics: list[str] | None = None  # tracked metrics; None: the suite's `metrics`


class PlatformOverhead(StrictModel):
    """s/epoch under geosweep (Ray Train, 1 worker) / a plain PyTorch loop, side by side (geosweep.bench.overhead)."""

    metrics: ClassVar[tuple[str, ...]] = ("perf/platform_overhead_ratio",)
    figure: Literal["platform_overhead"]
    config: str = Field(min_length=1)  # the run config both sides train, relative to the suite file
    epochs: int = Field(8, ge=2)
    warmup: int = Field(2, ge=1)  # epochs left out of both medians
    num_points: int = Field(1024, ge=8)
    train_per_class: int = Field(128, ge=1)
    threads: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _epochs_after_warmup(self) -> PlatformOverhead:
        if self.epochs <= self.warmup:
            raise ValueError(f"epochs ({self.epochs}) must exceed warmup ({self.warmup}): no epoch would be measured")
        return self


class RepresentationThroughput(StrictModel):
    """tinv_mds against classical N x N MDS, and fa against tinv_mds per forward (geosweep.bench.representations)."""

    metrics: ClassVar[tuple[str, ...]] = ("perf/tinv_mds_speedup_vs_classical_mds", "perf/fa_over_tinv_mds_forward")
    figure: Literal["representation_throughput"]
    clouds: int = Field(256, ge=1)
    points: int = Field(1024, ge=8)
    oracle_clouds: int = Field(8, ge=1)  # the O(N^3) baseline runs on this many


Figure = Annotated[PlatformOverhead | RepresentationThroughput, Field(discriminator="figure")]
FIGURES = {"platform_overhead": PlatformOverhead, "representation_throughput": RepresentationThroughput}


class SuiteConfig(StrictModel):
    """One nightly benchmark: what runs, and when a metric counts as regressed."""

    name: str = Field(min_length=1, pattern=f"^{ENTRY_NAME.pattern}$")  # nights compare only with nights of this name
    experiment: str = Field("nightly", min_length=1)
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else ./mlflow.db
    storage_path: str | None = None  # Ray Train checkpoints; None: ./ray_results on a local Ray
    baseline_window: int = Field(5, ge=1)  # K
    metrics: list[str] = []  # tracked for every run that names none of its own
    tolerances: dict[str, Tolerance]
    run_overrides: dict[str, Any] = {}  # dotted run-config path -> value, for every run, after its own
    runs: dict[str, RunEntry] = {}
    performance: dict[str, Figure] = {}
    select: list[str] | None = None  # entry names to run; None: all

    @model_validator(mode="after")
    def _consistent(self) -> SuiteConfig:
        problems = []
        for key, entry in self.runs.items():
            placeholders = {field for _, field, _, _ in string.Formatter().parse(key) if field is not None}
            if placeholders != set(entry.matrix):
                problems.append(
                    f"runs.{key}: name placeholders {sorted(placeholders)} must be exactly the matrix axes "
                    f"{sorted(entry.matrix)}, so that every expanded run has its own name"
                )
            metrics = entry.metrics if entry.metrics is not None else self.metrics
            if not metrics:
                problems.append(f"runs.{key}: tracks no metric (give it `metrics`, or give the suite `metrics`)")
            problems += [
                f"runs.{key}.metrics: no tolerance for {m!r} (add tolerances.{m})"
                for m in metrics
                if m not in self.tolerances
            ]
        for key, figure in self.performance.items():
            problems += [
                f"performance.{key}: no tolerance for {m!r} (add tolerances.{m})"
                for m in figure.metrics
                if m not in self.tolerances
            ]
        if not problems:
            names = [name for key, entry in self.runs.items() for name, _ in expand(key, entry)] + list(
                self.performance
            )
            # Names go into MLflow filter strings, Train run names and artifact paths.
            invalid = [name for name in names if not ENTRY_NAME.fullmatch(name)]
            if invalid:
                problems.append(f"entry names may hold only letters, digits and _ . - (got {invalid})")
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                problems.append(f"entry names must be unique; repeated: {duplicates}")
            unknown = [name for name in self.select or [] if name not in names]
            if unknown:
                problems.append(f"select: unknown entries {unknown}; valid names: {', '.join(names)}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


@dataclass(frozen=True)
class PlannedRun:
    """One training entry of a night: its name and resolved config."""

    name: str
    config: RunConfig
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class PlannedFigure:
    """One benchmark figure of a night: its name and what measures it."""

    name: str
    spec: PlatformOverhead | RepresentationThroughput
    metrics: tuple[str, ...]


def expand(key: str, entry: RunEntry) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every (run name, overrides in the order they apply) of a run entry; one per matrix combination."""
    axes = list(entry.matrix)
    runs = []
    for combination in itertools.product(*(entry.matrix[axis].items() for axis in axes)):
        labels = {axis: label for axis, (label, _) in zip(axes, combination, strict=True)}
        runs.append((key.format(**labels), [entry.overrides, *(overrides for _, overrides in combination)]))
    return runs


def plan(suite: SuiteConfig) -> list[PlannedRun | PlannedFigure]:
    """The selected entries, each validated: performance figures first (measured on a quiet machine), then runs.

    Raises:
        ConfigError: naming the entry, its config file and the field.
    """
    selected = set(suite.select) if suite.select is not None else None
    planned: list[PlannedRun | PlannedFigure] = []
    for name, spec in suite.performance.items():
        if selected is None or name in selected:
            if isinstance(spec, PlatformOverhead):  # fail now, not after the other entries ran
                _in_entry(suite, name, partial(load_run_config, spec.config))  # the benchmark's own overrides follow
            planned.append(PlannedFigure(name, spec, spec.metrics))
    for key, entry in suite.runs.items():
        metrics = tuple(entry.metrics if entry.metrics is not None else suite.metrics)
        for name, overrides in expand(key, entry):
            if selected is None or name in selected:
                planned.append(PlannedRun(name, _run_config(suite, name, entry.config, overrides), metrics))
    return planned


def _run_config(suite: SuiteConfig, name: str, path: str, overrides: list[dict[str, Any]]) -> RunConfig:
    """The run config of entry `name`: the file, its overrides, the suite's run_overrides, the suite's tracking."""
    tracking = {"tracking.experiment": suite.experiment, "tracking.tracking_uri": suite.tracking_uri}
    values: dict[str, Any] = {}
    for layer in [*overrides, suite.run_overrides, tracking]:
        for key, value in layer.items():
            values.pop(key, None)  # re-inserted last: set_values applies keys in order, so later layers win
            values[key] = value
    return _in_entry(suite, name, lambda: parse_run_config(set_values(read_yaml_mapping(path), values), source=path))


def _in_entry(suite: SuiteConfig, name: str, build: Callable[[], RunConfig]) -> RunConfig:
    """`build()`, its ConfigError prefixed with the suite and entry it belongs to."""
    try:
        return build()
    except ConfigError as err:
        raise ConfigError(f"suite {suite.name!r}, entry {name!r}: {err}") from None


def load_suite(path: str | Path, overrides: list[str] = ()) -> SuiteConfig:
    """Read a suite (following `extends`), apply `--set` overrides and validate the suite and every entry's run config.

    Raises:
        ConfigError: naming the file and the field.
    """
    path = Path(path)
    raw = set_suite_values(read_suite_mapping(path), parse_set_items(overrides, example="baseline_window=7"))
    try:
        suite = SuiteConfig.model_validate(_with_absolute_paths(raw, Path.cwd()))
    except pydantic.ValidationError as err:
        raise ConfigError(f"{path}: invalid nightly suite\n" + format_errors(err, SuiteConfig)) from None
    plan(suite)
    return suite


def read_suite_mapping(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A suite file as data, with `extends` resolved and every config path made absolute."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to {path.name}")
    raw = read_yaml_mapping(path)
    if "extends" not in raw:
        return _with_absolute_paths(raw, path.parent)
    if not set(raw) <= {"extends", "overrides"} or not isinstance(raw.get("overrides", {}), dict):
        raise ConfigError(
            f"{path}: a derived suite holds only `extends: FILE` and an `overrides:` mapping of dotted "
            f"suite paths (got keys {sorted(raw)})"
        )
    base = read_suite_mapping(path.parent / str(raw["extends"]), (*seen, path.resolve()))
    return _with_absolute_paths(set_suite_values(base, raw.get("overrides") or {}), path.parent)


def set_suite_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with each dotted suite path set; within an overrides mapping the rest is one key."""
    result = copy.deepcopy(raw)
    for path, value in values.items():
        parts = path.split(".")
        for index, part in enumerate(parts[:-1]):
            if part in OVERRIDE_MAPPINGS:
                parts = [*parts[: index + 1], ".".join(parts[index + 1 :])]
                break
        node = result
        for key in parts[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: {key!r} holds {child!r}, not a mapping")
            node = child
        node[parts[-1]] = value
    return result


def _with_absolute_paths(raw: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Entries' `config` paths resolved against the directory of the file that gave them."""
    result = copy.deepcopy(raw)
    for group in ("runs", "performance"):
        entries = result.get(group)
        for entry in entries.values() if isinstance(entries, dict) else []:
            if isinstance(entry, dict) and isinstance(entry.get("config"), str):
                entry["config"] = str((directory / entry["config"]).resolve())
    return result
