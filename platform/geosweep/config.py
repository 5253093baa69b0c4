"""Typed, frozen run configs: loaded from YAML, overridden by `--set`, validated before Ray starts.

Validation binds every component's kwargs to its registered constructor, so a
typo in a config fails here with the field, the value and the valid choices,
never minutes later inside a Ray worker.
"""

from __future__ import annotations

import types
import typing
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
from geosweep.data.shapes import CLASSES as SHAPE_CLASSES
from geosweep.data.sources import check_local_dir
from geosweep.registry import BACKBONES, DATASETS, HYPERNETS, REPRESENTATIONS, TASKS, Registry, RegistryError


class ConfigError(ValueError):
    """A config that cannot run; the message names the source, the field and what was expected."""


class StrictModel(BaseModel):
    """A config section: frozen, and an unknown key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Component(StrictModel):
    """A registered name plus the keyword arguments of its constructor."""

    registry: ClassVar[Registry]
    name: str
    # validate_default: a component whose kwargs are omitted is still checked for missing required arguments.
    kwargs: dict[str, Any] = Field(default={}, validate_default=True)

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
    """The task (`classification`, `tsp`) and its registered constructor's arguments."""

    registry = TASKS


class RotationSpec(StrictModel):
    """Rotation protocols of the training and test splits (the literature's z/z, z/SO3, SO3/SO3)."""

    train: RotationProtocol = "none"  # also applied to the validation split
    test: RotationProtocol = "none"


class RangeSpec(StrictModel):
    """A uniform draw from [low, high]."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high}); expected low <= high")
        return self


class ScaleSpec(RangeSpec):
    """Random scaling of each training cloud by a factor in [low, high]."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    per_axis: bool = False  # one factor per axis (DGCNN's anisotropic scaling), else one per cloud


class JitterSpec(StrictModel):
    """Gaussian noise on every point of a training cloud, clipped (PointNet: sigma 0.01, clip 0.05)."""

    sigma: float = Field(gt=0)
    clip: float = Field(gt=0)


class AugmentationSpec(StrictModel):
    """Random transforms of every training cloud, drawn afresh each epoch with its rotation (None: off).

    A cloud x becomes R (s * x) + t + noise: scaled in its own axes, rotated by the train protocol, moved, jittered.
    """

    scale: ScaleSpec | None = None
    translate: RangeSpec | None = None  # an offset per axis, each uniform in [low, high]
    jitter: JitterSpec | None = None


class DatasetSpec(_Component):
    """A registered dataset, its arguments, its rotation protocols and its training augmentation."""

    registry = DATASETS
    rotation: RotationSpec = RotationSpec()
    augmentation: AugmentationSpec = AugmentationSpec()


class RepresentationSpec(_Component):
    """The representation axis: a registered name and its arguments."""

    registry = REPRESENTATIONS


class BackboneSpec(_Component):
    """The backbone axis: a registered name and its arguments."""

    registry = BACKBONES


class HypernetSpec(_Component):
    """The hypernetwork axis: a registered name (`none` for no hypernetwork) and its arguments."""

    registry = HYPERNETS


class ConstantSchedule(StrictModel):
    """The learning rate stays `optimizer.lr`."""

    name: Literal["constant"] = "constant"


class CosineSchedule(StrictModel):
    """Cosine annealing from `optimizer.lr` towards `min_lr` over the run's epochs (torch's CosineAnnealingLR)."""

    name: Literal["cosine"]
    min_lr: float = Field(0.0, ge=0)


class StepSchedule(StrictModel):
    """The learning rate times `gamma` every `step_size` epochs (torch's StepLR)."""

    name: Literal["step"]
    step_size: int = Field(ge=1)
    gamma: float = Field(gt=0, le=1)


# Each schedule's fields travel with its name, so a sweep grid over whole schedules gets no meaningless mix.
LRSchedule = Annotated[ConstantSchedule | CosineSchedule | StepSchedule, Field(discriminator="name")]


class OptimizerSpec(StrictModel):
    """The optimizer, its learning rate and weight decay, SGD's momentum, and the per-epoch learning-rate schedule."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd only
    schedule: LRSchedule = ConstantSchedule()

    @field_validator("momentum")
    @classmethod
    def _momentum_is_sgds(cls, momentum: float, info: ValidationInfo) -> float:
        name = info.data.get("name", "sgd")  # an unknown name was already reported
        if momentum and name != "sgd":
            raise ValueError(f"momentum applies to sgd only, not {name!r}; adam and adamw keep their betas")
        return momentum


class ScalingSpec(StrictModel):
    """Ray Train's worker group: how many DDP workers and what each one holds."""

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


class FailureSpec(StrictModel):
    """How often a run's worker group may restart from its last checkpoint, and how many checkpoints it keeps."""

    max_failures: int = Field(0, ge=-1)  # worker-group restarts; -1 = unlimited
    # Resuming needs the latest; the one before it covers a latest cut off mid-write. Older ones only fill the disk.
    checkpoints_to_keep: int = Field(2, ge=1)


class CacheSpec(StrictModel):
    """Where and whether deterministic representations are cached by content hash."""

    enabled: bool = True  # deterministic representations are computed once per content hash
    dir: str | None = None  # None: $GEOSWEEP_CACHE_DIR, else ~/.cache/geosweep/representations

    @field_validator("dir")
    @classmethod
    def _writable(cls, directory: str | None) -> str | None:
        # Created on the first cache write, inside a worker: refuse here a place that can never be written.
        return None if directory is None else check_local_dir(directory, field="cache.dir", create=True)


class CertifySpec(StrictModel):
    """After training: the model's invariance under random transforms of its claimed groups."""

    samples: int = Field(8, ge=1)  # random transforms per check
    max_clouds: int = Field(128, ge=1)  # test clouds used


class TrackingSpec(StrictModel):
    """The MLflow experiment and tracking store a run records into."""

    experiment: str = Field("geosweep", min_length=1)
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else ./mlflow.db
    # Training goes on while the store is unreachable (writes wait in order); longer than this fails the run.
    outage_limit_s: float = Field(600.0, gt=0)
    # MLflow's system-metrics monitor on rank 0's node: CPU, memory, disk, network (and GPUs, with nvidia-ml-py).
    system_metrics: bool = True
    # Seconds between its samples ($MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, where set, wins: MLflow's rule).
    system_metrics_interval_s: float = Field(10.0, gt=0)


class RunConfig(StrictModel):
    """Everything that determines one training run."""

    task: TaskSpec = TaskSpec(name="classification")
    dataset: DatasetSpec
    representation: RepresentationSpec
    backbone: BackboneSpec
    hypernet: HypernetSpec = HypernetSpec(name="none")
    optimizer: OptimizerSpec = OptimizerSpec()
    epochs: int = Field(ge=1)
    batch_size: int = Field(32, ge=1)  # per worker; effective batch = batch_size * num_workers
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: the forward under autocast, any device (TSP pointer stays fp32)
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
            if self.dataset.augmentation != AugmentationSpec():
                raise ValueError("dataset.augmentation applies to point clouds; TSP trains on fresh instances")
            if self.hypernet.kwargs.get("condition") == "hyperparam":
                raise ValueError(
                    "hypernet.kwargs.condition 'hyperparam' amortises a classification hyperparameter; "
                    "use 'spectrum' for TSP"
                )
        self._batch_fits_the_training_split()
        return self

    def _batch_fits_the_training_split(self) -> None:
        """Refuse a batch larger than the training split where the config alone fixes the split's size.

        Each worker drops its last partial batch, so such a run would have no training steps at all. A file
        dataset's size is only known once it is read; the task checks it then.
        """
        if self.task.name == "tsp":
            size = TASKS.resolved_kwargs("tsp", self.task.kwargs)["epoch_size"]
            split = f"task.kwargs.epoch_size = {size} training instances per epoch"
        elif self.dataset.name == "shapes":
            per_class = DATASETS.resolved_kwargs("shapes", self.dataset.kwargs)["train_per_class"]
            classes = len(SHAPE_CLASSES)
            size = per_class * classes
            split = f"{size} training clouds (dataset.kwargs.train_per_class {per_class} x {classes} classes)"
        else:
            return
        workers = self.scaling.num_workers
        if self.batch_size * workers > size:
            raise ValueError(
                f"batch_size: {self.batch_size} per worker x {workers} workers is more than the {split}; "
                f"expected at most {size // workers}"
            )


def load_run_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML run config, apply `a.b=value` overrides and validate.

    Raises:
        ConfigError: naming the file, the field, the value and the valid choices.
    """
    raw = read_yaml_mapping(path)
    return parse_run_config(apply_overrides(raw, overrides), source=str(path))


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping that gives one key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a duplicate key, which would otherwise silently take the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping after checking that no key is given twice (merge keys `<<` aside)."""
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` keys may be overridden: that is its use
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, typing.Hashable):
                continue  # SafeLoader's own construct_mapping reports an unhashable key
            if key in first_lines:
                raise DuplicateKeyError(
                    None, None, f"line {line}: duplicate key {key!r} (first given on line {first_lines[key]})"
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse config YAML: `yaml.safe_load`, but a duplicate key is a DuplicateKeyError naming it and its line."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (`load_yaml`); anything else is a ConfigError naming the file."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err.problem}") from None
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
        try:
            values[path] = load_yaml(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: cannot read the value as YAML: {err}") from None
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
    """One line per problem: `field.path: what is wrong (got value)`; an unknown key lists the valid keys there.

    A model-wide check (one with no field) may report several problems, one per line, each naming its field.
    """
    lines = []
    for e in err.errors():
        path, _ = _follow(model, e["loc"])
        field, message = ".".join(path), e["msg"].removeprefix("Value error, ")
        if not path:
            lines += [f"  {problem}" for problem in message.splitlines()]
        elif e["type"] == "extra_forbidden":
            _, parent = _follow(model, e["loc"][:-1])
            valid = ", ".join(parent.model_fields) if parent else "none"
            lines.append(f"  {field}: unknown key (valid keys here: {valid})")
        elif e["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
        else:
            got = "" if "(got " in message else f" (got {e['input']!r})"
            lines.append(f"  {field}: {message}{got}")
    return "\n".join(lines)


def _follow(model: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """The field path an error location names, and the model it reaches (None if it reaches no model).

    Pydantic puts the member it tried into the location of a union (a tagged union's tag, else the
    member's class name); the path leaves that out, since the keys around it already say where.
    """
    path: list[str] = []
    node: Any = model
    for part in loc:
        members = _union_members(node)
        if members:
            node = members.get(str(part), members.get(None))
            if str(part) in members:
                continue
        path.append(str(part))
        if isinstance(node, type) and issubclass(node, BaseModel) and str(part) in node.model_fields:
            field = node.model_fields[str(part)]
            # A field's own Field(discriminator=...) leaves its annotation: put it back for _union_members.
            node = field.annotation if field.discriminator is None else Annotated[field.annotation, field]
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            node = None
    node = _union_members(node).get(None, node)
    return path, node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _union_members(annotation: Any) -> dict[str | None, Any]:
    """A union's members by the name pydantic gives them in error locations; an optional's one member under None."""
    discriminator = None
    if typing.get_origin(annotation) is Annotated:
        annotation, *metadata = typing.get_args(annotation)
        discriminator = next((m.discriminator for m in metadata if getattr(m, "discriminator", None)), None)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    members = [m for m in typing.get_args(annotation) if m is not type(None)]
    if len(members) == 1:
        return {None: members[0]}
    if discriminator:
        return {tag: m for m in members for tag in typing.get_args(m.model_fields[discriminator].annotation)}
    return {getattr(m, "__name__", str(m)): m for m in members}


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
    """A config as the YAML that loads back into it."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
