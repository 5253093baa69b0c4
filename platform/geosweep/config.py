"""Typed, frozen run configs: loaded from YAML, overridden by `--set`, validated before Ray starts.

Validation binds every component's kwargs to its registered constructor, so a
typo in a config fails here with the field, the value and the valid choices,
never minutes later inside a Ray worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Importing the component packages fills the registries that validation consults.
import geosweep.backbones  # noqa: F401,E402
import geosweep.data  # noqa: F401
import geosweep.hypernets  # noqa: F401
import geosweep.representations  # noqa: F401
import geosweep.tasks  # noqa: F401
from geosweep.data.rotations import RotationProtocol
from geosweep.registry import BACKBONES, DATASETS, HYPERNETS, REPRESENTATIONS, TASKS, Registry, RegistryError


class ConfigError(ValueError):
    """A config that cannot run; the message names the source, the field and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Component(_Strict):
    """A registered name plus the keyword arguments of its constructor."""

    registry: ClassVar[Registry]
    name: str
    kwargs: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            cls.registry.get(name)
        except RegistryError as err:
            raise ValueError(str(err)) from None
        return name

    @field_validator("kwargs")
    @classmethod
    def _bindable(cls, kwargs: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "name" in info.data:  # an unknown name was already reported
            cls.registry.validate_kwargs(info.data["name"], kwargs)
        return kwargs


class TaskSpec(_Component):
    registry = TASKS


class RotationSpec(_Strict):
    train: RotationProtocol = "none"  # also applied to the validation split
    test: RotationProtocol = "none"


class DatasetSpec(_Component):
    registry = DATASETS
    rotation: RotationSpec = RotationSpec()


class RepresentationSpec(_Component):
    registry = REPRESENTATIONS


class BackboneSpec(_Component):
    registry = BACKBONES


class HypernetSpec(_Component):
    registry = HYPERNETS


class OptimizerSpec(_Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class ScalingSpec(_Strict):
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False  # each worker then holds one whole GPU and uses nccl
    cpus_per_worker: float = Field(1.0, gt=0)  # fractional on small machines
    # Other resources each worker holds, e.g. {accelerator_type:A10G: 0.001} or a custom accelerator resource.
    resources_per_worker: dict[str, Annotated[float, Field(gt=0)]] = {}
    # How Ray places the workers: PACK keeps them on as few nodes as possible (one, when one node has
    # enough GPUs), SPREAD prefers distinct nodes, STRICT_* insist.
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"

    @field_validator("resources_per_worker")
    @classmethod
    def _not_cpu_or_gpu(cls, resources: dict[str, float]) -> dict[str, float]:
        for name in set(resources) & {"CPU", "GPU"}:
            raise ValueError(f"{name} is set by {'cpus_per_worker' if name == 'CPU' else 'use_gpu'}, not here")
        return resources


class FailureSpec(_Strict):
    max_failures: int = Field(0, ge=-1)  # worker-group restarts; -1 = unlimited


class CacheSpec(_Strict):
    enabled: bool = True  # deterministic representations are computed once per content hash
    dir: str | None = None  # None: $GEOSWEEP_CACHE_DIR, else ~/.cache/geosweep/representations


class CertifySpec(_Strict):
    """After training: the model's invariance under random transforms of its claimed groups."""

    samples: int = Field(8, ge=1)  # random transforms per check
    max_clouds: int = Field(128, ge=1)  # test clouds used


class TrackingSpec(_Strict):
    experiment: str = Field("geosweep", min_length=1)
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else ./mlflow.db


class RunConfig(_Strict):
    """Everything that determines one training run."""

    task: TaskSpec = TaskSpec(name="classification")
    dataset: DatasetSpec
    representation: RepresentationSpec
    backbone: BackboneSpec
    hypernet: HypernetSpec = HypernetSpec(name="none")
    optimizer: OptimizerSpec = OptimizerSpec()
    epochs: int = Field(ge=1)
    batch_size: int = Field(32, ge=1)  # per worker; effective batch = batch_size * num_workers
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on GPU
    scaling: ScalingSpec = ScalingSpec()
    failure: FailureSpec = FailureSpec()
    seed: int = Field(0, ge=0)
    cache: CacheSpec = CacheSpec()
    certify: CertifySpec = CertifySpec()
    tracking: TrackingSpec = TrackingSpec()

    @model_validator(mode="after")
    def _components_agree(self) -> RunConfig:
        """Task, dataset and backbone are all for point clouds or all for tours (TSP)."""
        kinds = {
            f"task {self.task.name!r}": TASKS.kind(self.task.name),
            f"dataset {self.dataset.name!r}": DATASETS.kind(self.dataset.name),
            f"backbone {self.backbone.name!r}": BACKBONES.kind(self.backbone.name),
        }
        if len(set(kinds.values())) > 1:
            described = ", ".join(f"{what} is for {kind}" for what, kind in kinds.items())
            raise ValueError(f"task, dataset and backbone must be for the same problem: {described}")
        if kinds[f"task {self.task.name!r}"] == "tour":
            if self.dataset.rotation != RotationSpec():
                raise ValueError("dataset.rotation applies to point clouds; TSP is tested on fixed transformed copies")
            if self.hypernet.kwargs.get("condition") == "hyperparam":
                raise ValueError("hypernet.kwargs.condition 'hyperparam' amortises a classification hyperparameter; "
                                 "use 'spectrum' for TSP")  # fmt: skip
        return self


def load_run_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML run config, apply `a.b=value` overrides and validate.

    Raises:
        ConfigError: naming the file, the field, the value and the valid choices.
    """
    raw = read_yaml_mapping(path)
    return parse_run_config(apply_overrides(raw, overrides), source=str(path))


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (`yaml.safe_load`); anything else is a ConfigError naming the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields, got {type(raw).__name__}")
    return raw


def parse_run_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config mapping; errors become one ConfigError listing every problem."""
    try:
        return RunConfig.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(f"{source}: invalid config\n" + format_errors(err, RunConfig)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `dotted.path=value` set; values are parsed as YAML."""
    return set_values(raw, parse_set_items(overrides))


def parse_set_items(items: list[str], example: str = "backbone.name=pointnet") -> dict[str, Any]:
    """`["a.b=value", ...]` -> `{"a.b": value}`, values parsed as YAML; `example` shows a valid item in errors."""
    values = {}
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--set {item!r}: expected dotted.path=value, e.g. {example}")
        values[path] = yaml.safe_load(text)
    return values


def set_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with the value at each dotted path replaced (missing mappings are created)."""
    result = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = result
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: {key!r} holds {child!r}, not a mapping")
            node = child
        node[leaf] = value
    return result


def format_errors(err: pydantic.ValidationError, model: type[BaseModel]) -> str:
    """One line per problem: `field.path: what is wrong (got value)`."""
    lines = []
    for e in err.errors():
        field = ".".join(str(part) for part in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            valid = ", ".join(_fields_at(model, e["loc"][:-1]))
            lines.append(f"  {field}: unknown key (valid keys here: {valid})")
        elif e["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
        else:
            message = e["msg"].removeprefix("Value error, ")
            got = "" if "(got " in message else f" (got {e['input']!r})"
            lines.append(f"  {field}: {message}{got}")
    return "\n".join(lines)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the nested model reached by following `loc` from `model`."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


def flatten(config: BaseModel) -> dict[str, str]:
    """`{"backbone.kwargs.dropout": "0.3", ...}`: the resolved config as MLflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = str(value)

    walk("", config.model_dump(mode="json"))
    return flat


def dump_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
