from typing import Literal

import pytest

from geosweep.registry import BACKBONES, DATASETS, HYPERNETS, REPRESENTATIONS, TASKS, Registry, RegistryError


def make_registry() -> Registry:
    registry = Registry("widget", provided=("size",))

    @registry.register("knob")
    def knob(size: int, colour: Literal["red", "blue"] = "red", turns: int = 1):
        return size, colour, turns

    return registry


def test_build_passes_user_kwargs_and_provided_args():
    assert make_registry().build("knob", {"colour": "blue", "turns": "3"}, size=5) == (5, "blue", 3)


def test_duplicate_name_raises():
    registry = make_registry()
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("knob")(lambda size: None)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(RegistryError, match=r"unknown widget 'dial'; valid choices: knob"):
        make_registry().get("dial")


def test_kwargs_are_checked_against_the_signature():
    registry = make_registry()
    with pytest.raises(ValueError, match=r"unknown argument 'spin' \(valid arguments: colour, turns\)"):
        registry.validate_kwargs("knob", {"spin": 1})
    with pytest.raises(ValueError, match=r"argument 'colour'.*'red' or 'blue'.*got 'green'"):
        registry.validate_kwargs("knob", {"colour": "green"})
    with pytest.raises(ValueError, match=r"unknown argument 'size'"):  # platform-provided, not user-settable
        registry.validate_kwargs("knob", {"size": 3})


def test_every_axis_has_its_first_components():
    import geosweep.config  # noqa: F401  (fills the registries)

    assert "shapes" in DATASETS.names()
    assert {"raw", "tinv_mds"} <= set(REPRESENTATIONS.names())
    assert "pointnet" in BACKBONES.names()
    assert "none" in HYPERNETS.names()
    assert "classification" in TASKS.names()
