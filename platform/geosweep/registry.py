"""One small registry per sweep axis: the registered name is a component's only name.

The same string appears in YAML configs, Tune search spaces, MLflow tags
(`axis.backbone=pointnet`) and reports. Each entry's keyword arguments are
checked against its constructor's signature before any resource is allocated.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import pydantic

T = TypeVar("T", bound=Callable[..., Any])


class RegistryError(KeyError):
    """An unknown or duplicate registered name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Named constructors for one sweep axis.

    A constructor is usually the component's class itself, so its arguments,
    defaults and constraints (`Annotated[int, Field(ge=1)]`) are stated once, in
    `__init__`, and documented once, in the class docstring.

    Args:
        axis: what the entries are, for error messages ("backbone").
        provided: constructor parameters the platform fills in (e.g. a
            backbone's `in_channels`); configs may not set them.
        kinds: the problems entries are for ("classification", "tour"); when given,
            every entry declares one as it registers, and configs pair entries of one kind.
    """

    def __init__(self, axis: str, provided: tuple[str, ...] = (), kinds: tuple[str, ...] = ()) -> None:
        self.axis = axis
        self.provided = frozenset(provided)
        self.kinds = kinds
        self._entries: dict[str, T] = {}
        self._kinds: dict[str, str] = {}
        self._kwargs_models: dict[str, type[pydantic.BaseModel]] = {}

    def register(self, name: str, *, kind: str | None = None) -> Callable[[T], T]:
        """Decorator that registers a constructor under `name`.

        Args:
            name: the component's only name, from YAML to MLflow tags.
            kind: the problem the entry is for; required exactly when the registry has `kinds`.

        Raises:
            RegistryError: `name` is already registered.
            ValueError: `kind` is missing, unknown, or given to a registry without kinds.
        """
        if (kind is None) != (not self.kinds) or (kind is not None and kind not in self.kinds):
            expected = f"one of {', '.join(self.kinds)}" if self.kinds else "none"
            raise ValueError(f"{self.axis} {name!r}: kind {kind!r} (expected {expected})")

        def add(constructor: T) -> T:
            if name in self._entries:
                raise RegistryError(f"{self.axis} {name!r} is already registered")
            self._entries[name] = constructor
            if kind is not None:
                self._kinds[name] = kind
            return constructor

        return add

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """The constructor registered as `name`; an unknown name raises, listing the valid ones."""
        if name not in self._entries:
            raise RegistryError(f"unknown {self.axis} {name!r}; valid choices: {', '.join(self.names())}")
        return self._entries[name]

    def name_of(self, constructor: Any) -> str | None:
        """The name `constructor` is registered under, or None if it is not registered."""
        return next((name for name, entry in self._entries.items() if entry is constructor), None)

    def kind(self, name: str) -> str:
        """The problem entry `name` declared it is for when it registered ("classification" or "tour")."""
        self.get(name)
        return self._kinds[name]

    def arguments(self, name: str) -> list[str]:
        """Entry `name`'s user-settable arguments as its constructor states them ("k: int = 20"), for listings."""
        skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        stated = []
        for p in inspect.signature(self.get(name)).parameters.values():
            if p.name in self.provided or p.kind in skipped:
                continue
            stated_type = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
            annotation = "" if p.annotation is p.empty else f": {stated_type}"
            default = " (required)" if p.default is p.empty else f" = {p.default!r}"
            stated.append(f"{p.name}{annotation}{default}")
        return stated

    def summary(self, name: str) -> str:
        """The first line of entry `name`'s docstring."""
        return (inspect.getdoc(self.get(name)) or "").split("\n")[0]

    def validate_kwargs(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check user kwargs against the constructor's signature and annotations.

        Returns:
            The kwargs coerced to the annotated types.

        Raises:
            RegistryError: `name` is not registered.
            ValueError: an unknown argument, a missing required one (a parameter
                without a default that the platform does not provide), a wrong type
                or an out-of-range value, naming the argument and what was expected.
        """
        validated = self._validated(name, kwargs)
        # Attributes, not model_dump(): nested config models reach the constructor as models.
        return {name: getattr(validated, name) for name in validated.model_fields_set}

    def resolved_kwargs(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Every user-settable argument of entry `name`: the validated `kwargs` plus the defaults of the rest.

        Raises:
            RegistryError, ValueError: as `validate_kwargs`.
        """
        validated = self._validated(name, kwargs)
        return {name: getattr(validated, name) for name in type(validated).model_fields}

    def _validated(self, name: str, kwargs: dict[str, Any]) -> pydantic.BaseModel:
        model = self._kwargs_models.get(name) or self._build_kwargs_model(name)
        try:
            return model.model_validate(kwargs)
        except pydantic.ValidationError as err:
            problems = []
            for e in err.errors():
                arg = ".".join(str(part) for part in e["loc"])
                if e["type"] == "extra_forbidden":
                    valid = ", ".join(model.model_fields) or "none"
                    problems.append(f"unknown argument {arg!r} (valid arguments: {valid})")
                elif e["type"] == "missing" and len(e["loc"]) == 1:
                    # The axis is also the config field that holds the entry, so this names the key to add.
                    problems.append(f"missing required argument {arg!r} (set {self.axis}.kwargs.{arg})")
                else:
                    problems.append(f"argument {arg!r}: {e['msg'].removeprefix('Value error, ')} (got {e['input']!r})")
            raise ValueError(f"{self.axis} {name!r}: " + "; ".join(problems)) from None

    def build(self, name: str, kwargs: dict[str, Any], **provided: Any) -> Any:
        """Construct entry `name` from user kwargs plus the platform-provided args it accepts."""
        constructor = self.get(name)
        accepted = inspect.signature(constructor).parameters
        provided = {key: value for key, value in provided.items() if key in accepted}
        return constructor(**self.validate_kwargs(name, kwargs), **provided)

    def _build_kwargs_model(self, name: str) -> type[pydantic.BaseModel]:
        fields: dict[str, Any] = {}
        for param in inspect.signature(self.get(name), eval_str=True).parameters.values():
            if param.name in self.provided or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = Any if param.annotation is param.empty else param.annotation
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        model = pydantic.create_model(
            f"{self.axis}_{name}_kwargs",
            __config__=pydantic.ConfigDict(extra="forbid", strict=False, arbitrary_types_allowed=True),
            **fields,
        )
        self._kwargs_models[name] = model
        return model


KINDS = ("classification", "tour")  # point clouds -> labels; TSP cities -> tours
DATASETS: Registry = Registry("dataset", provided=("seed",), kinds=KINDS)
REPRESENTATIONS: Registry = Registry("representation")
BACKBONES: Registry = Registry("backbone", provided=("in_channels", "out_dim"), kinds=KINDS)
HYPERNETS: Registry = Registry("hypernet", provided=("target", "in_channels"))
TASKS: Registry = Registry("task", kinds=KINDS)
AXES: dict[str, Registry] = {  # every sweep axis, as `geosweep list` shows them
    "task": TASKS,
    "dataset": DATASETS,
    "representation": REPRESENTATIONS,
    "backbone": BACKBONES,
    "hypernet": HYPERNETS,
}
