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


def test_a_class_is_its_own_constructor_with_annotated_constraints():
    from typing import Annotated

    from pydantic import Field

    registry = Registry("widget", provided=("size",))

    @registry.register("dial")
    class Dial:
        def __init__(self, size: int, turns: Annotated[int, Field(ge=1)] = 2) -> None:
            self.size, self.turns = size, turns

    dial = registry.build("dial", {"turns": "3"}, size=5, unused=0)
    assert isinstance(dial, Dial) and (dial.size, dial.turns) == (5, 3)
    with pytest.raises(ValueError, match=r"argument 'turns': Input should be greater than or equal to 1"):
        registry.validate_kwargs("dial", {"turns": 0})


def test_entries_declare_their_kind_where_the_registry_has_kinds():
    registry = Registry("widget", kinds=("classification", "tour"))
    registry.register("knob", kind="tour")(lambda: None)
    assert registry.kind("knob") == "tour"
    with pytest.raises(ValueError, match=r"kind None \(expected one of classification, tour\)"):
        registry.register("dial")
    with pytest.raises(ValueError, match=r"kind 'graph'"):
        registry.register("dial", kind="graph")
    with pytest.raises(ValueError, match=r"kind 'tour' \(expected none\)"):
        make_registry().register("dial", kind="tour")
    with pytest.raises(RegistryError, match="unknown widget 'dial'"):
        registry.kind("dial")


def test_every_entry_of_a_kinded_axis_declares_a_kind():
    import geosweep.config  # noqa: F401  (fills the registries)

    for registry in (DATASETS, BACKBONES, TASKS):
        assert {registry.kind(name) for name in registry.names()} == {"classification", "tour"}


def test_missing_required_arguments_are_reported_but_provided_ones_are_not():
    registry = Registry("widget", provided=("size",))

    @registry.register("lever")
    def lever(size: int, length: float, colour: str = "red"):
        return size, length, colour

    with pytest.raises(ValueError, match=r"widget 'lever': missing required argument 'length' \(set widget.kwargs"):
        registry.validate_kwargs("lever", {})
    assert registry.validate_kwargs("lever", {"length": 2}) == {"length": 2.0}  # `size` is the platform's


def test_resolved_kwargs_fill_in_the_defaults():
    assert make_registry().resolved_kwargs("knob", {"turns": "3"}) == {"colour": "red", "turns": 3}


def test_name_of_finds_a_registered_constructor():
    registry = make_registry()
    assert registry.name_of(registry.get("knob")) == "knob"
    assert registry.name_of(object) is None
