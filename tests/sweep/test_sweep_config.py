"""Sweep configs: search-space conversion, conditional fields, seeds, searcher conflicts, validation."""

from pathlib import Path

import pytest
import yaml
from ray.tune.search.sample import Categorical, Float, Integer
from ray.tune.search.variant_generator import generate_variants

from geosweep.config import ConfigError
from geosweep.sweep.config import SweepConfig, load_sweep_config, trial_config, validate_every_trial
from geosweep.sweep.run import searcher
from geosweep.sweep.space import decode, label, param_space

REPO_ROOT = Path(__file__).resolve().parents[2]


def sweep(tiny_config, **fields) -> SweepConfig:
    return SweepConfig.model_validate({"name": "t", "base": tiny_config, **fields})


def test_each_domain_becomes_its_tune_domain(tiny_config):
    space = param_space(
        sweep(
            tiny_config,
            seeds=3,
            space={
                "backbone.kwargs.dropout": {"uniform": [0.0, 0.5]},
                "optimizer.lr": {"loguniform": [1e-4, 1e-2]},
                "batch_size": {"randint": [4, 9]},
                "representation.name": {"choice": ["raw", "tinv_mds"]},
                "hypernet": {"grid": [{"name": "none"}, {"name": "mip", "kwargs": {"hidden": [8]}}]},
            },
        )
    )
    assert isinstance(space["backbone.kwargs.dropout"], Float)
    assert isinstance(space["optimizer.lr"], Float) and "LogUniform" in type(space["optimizer.lr"].sampler).__name__
    assert isinstance(space["batch_size"], Integer)
    assert isinstance(space["representation.name"], Categorical)
    assert space["hypernet"] == {"grid_search": ["{name: none}", "{name: mip, kwargs: {hidden: [8]}}"]}
    assert space["seed"] == {"grid_search": [0, 1, 2]}


def test_conditional_kwargs_travel_with_their_component(tiny_config):
    spec = sweep(
        tiny_config, space={"hypernet": {"grid": [{"name": "none"}, {"name": "mip", "kwargs": {"hidden": [8]}}]}}
    )
    plain = trial_config(spec, decode(spec, {"hypernet": "{name: none}"}))
    mip = trial_config(spec, decode(spec, {"hypernet": label({"name": "mip", "kwargs": {"hidden": [8]}}), "seed": 2}))
    assert (plain.hypernet.name, plain.hypernet.kwargs) == ("none", {})
    assert (mip.hypernet.name, mip.hypernet.kwargs, mip.seed) == ("mip", {"hidden": [8]}, 2)


@pytest.mark.parametrize("name", ["optuna", "hyperopt"])
def test_grid_with_a_searcher_that_cannot_take_it_is_an_error(tiny_config, name):
    with pytest.raises(ValueError, match=rf"searcher '{name}' cannot take a grid over \['representation.name'\]"):
        sweep(tiny_config, searcher={"name": name}, space={"representation.name": {"grid": ["raw"]}})
    with pytest.raises(ValueError, match=r"cannot take a seeds: 3"):
        sweep(tiny_config, searcher={"name": name}, seeds=3)


SAMPLED_SPACE = {  # one of each domain a searcher converts into its own
    "optimizer.lr": {"loguniform": [1e-4, 1e-2]},
    "backbone.kwargs.dropout": {"uniform": [0.0, 0.5]},
    "batch_size": {"randint": [4, 9]},
    "hypernet": {"choice": [{"name": "none"}, {"name": "mip", "kwargs": {"hidden": [8]}}]},
}


def proposals(spec: SweepConfig, count: int) -> list[dict]:
    """The sampled values of the trials the sweep's searcher proposes from its param_space, as Tune asks it."""
    algorithm = searcher(spec)
    if algorithm is None:  # grid/random: Tune's BasicVariantGenerator expands the space with generate_variants
        return [
            variant for _ in range(spec.searcher.num_samples) for _, variant in generate_variants(param_space(spec))
        ]
    assert algorithm.set_search_properties(spec.metric, spec.mode, param_space(spec))  # Tune's conversion step
    return [algorithm.suggest(f"trial_{i}") for i in range(count)]


@pytest.mark.parametrize("name", ["grid", "random", "optuna", "hyperopt"])
def test_each_searcher_proposes_valid_trials_inside_the_space(tiny_config, name):
    takes_grids = name in ("grid", "random")
    space = {
        **SAMPLED_SPACE,
        **({"representation": {"grid": [{"name": "raw"}, {"name": "fa"}]}} if takes_grids else {}),
    }
    spec = sweep(tiny_config, space=space, seeds=2 if takes_grids else 1, searcher={"name": name, "num_samples": 3})
    trials = proposals(spec, count=6)
    configs = [trial_config(spec, decode(spec, sampled)) for sampled in trials]
    for config in configs:
        assert 1e-4 <= config.optimizer.lr <= 1e-2 * (1 + 1e-9)
        assert 0.0 <= config.backbone.kwargs["dropout"] <= 0.5
        assert isinstance(config.batch_size, int) and 4 <= config.batch_size <= 8
        assert config.hypernet.kwargs == ({"hidden": [8]} if config.hypernet.name == "mip" else {})
    if takes_grids:  # every grid point (representation x seed), once per sample
        points = sorted((c.representation.name, c.seed) for c in configs)
        assert points == sorted([(r, s) for r in ("raw", "fa") for s in (0, 1)] * 3)
    else:
        assert len(trials) == 6 and len({c.optimizer.lr for c in configs}) == 6


def test_domains_are_checked(tiny_config):
    with pytest.raises(ValueError, match="exactly one of grid"):
        sweep(tiny_config, space={"seed": {"grid": [1], "choice": [2]}})
    with pytest.raises(ValueError, match="low < high"):
        sweep(tiny_config, space={"optimizer.lr": {"uniform": [0.1, 0.01]}})


def test_validation_builds_every_trial_and_names_a_bad_one(tiny_config):
    good = sweep(
        tiny_config,
        space={
            "representation.name": {"grid": ["raw", "tinv_mds", "fa"]},
            "optimizer.lr": {"loguniform": [1e-4, 1e-2]},
        },
    )
    assert validate_every_trial(good) == 6
    bad = sweep(tiny_config, space={"backbone.kwargs.dropout": {"grid": [0.1, 1.5]}})
    with pytest.raises(ConfigError, match=r"(?s)trial \{.backbone.kwargs.dropout.: 1.5\}.*dropout"):
        validate_every_trial(bad)


def test_a_sweep_searches_schedules_momentum_and_augmentation_like_any_field(tiny_config):
    tiny_config["optimizer"] = {"name": "sgd", "lr": 0.1}
    cosine, step = {"name": "cosine", "min_lr": 0.001}, {"name": "step", "step_size": 1, "gamma": 0.5}
    spec = sweep(
        tiny_config,
        space={
            "optimizer.schedule": {"grid": [{"name": "constant"}, cosine, step]},
            "optimizer.momentum": {"uniform": [0.5, 0.95]},
            "dataset.augmentation.jitter": {"choice": [None, {"sigma": 0.01, "clip": 0.05}]},
        },
    )
    assert validate_every_trial(spec) == 12
    optimizer = trial_config(
        spec, decode(spec, {"optimizer.schedule": label(step), "optimizer.momentum": 0.8})
    ).optimizer
    assert (optimizer.schedule.name, optimizer.schedule.gamma, optimizer.momentum) == ("step", 0.5, 0.8)
    bad = sweep(tiny_config, space={"optimizer.schedule": {"grid": [cosine, {"name": "onecycle"}]}})
    with pytest.raises(ConfigError, match=r"(?s)trial .*onecycle.*optimizer.schedule: Input tag 'onecycle'"):
        validate_every_trial(bad)


def test_shipped_sweeps_validate_and_name_their_command():
    for path in sorted((REPO_ROOT / "configs" / "sweeps").glob("*.yaml")):
        assert validate_every_trial(load_sweep_config(path)) >= 1
        assert f"configs/sweeps/{path.name}" in path.read_text().split("\nname:")[0]


def test_base_may_be_a_path_relative_to_the_sweep_file(tmp_path, tiny_config):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny_config))
    (tmp_path / "s.yaml").write_text("name: s\nbase: base.yaml\nspace: {seed: {grid: [0, 1]}}\n")
    assert load_sweep_config(tmp_path / "s.yaml").base.epochs == tiny_config["epochs"]


def test_searchers_and_schedulers_are_real_tune_objects(tiny_config):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search.hyperopt import HyperOptSearch
    from ray.tune.search.optuna import OptunaSearch

    from geosweep.sweep.run import scheduler

    for name, kind in {"optuna": OptunaSearch, "hyperopt": HyperOptSearch}.items():
        spec = sweep(
            tiny_config, searcher={"name": name, "num_samples": 4}, space={"optimizer.lr": {"choice": [1e-3, 1e-2]}}
        )
        assert isinstance(searcher(spec), kind)
    assert searcher(sweep(tiny_config, searcher={"name": "random"})) is None  # Tune's BasicVariantGenerator
    kinds = {"fifo": FIFOScheduler, "asha": ASHAScheduler, "median_stop": MedianStoppingRule}
    for name, kind in kinds.items():
        assert isinstance(scheduler(sweep(tiny_config, scheduler={"name": name})), kind)


def load_sweep(tmp_path, tiny_config, **fields) -> SweepConfig:
    """Load a sweep from a file, as `geosweep validate` does: errors come as ConfigError naming the field."""
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "base": tiny_config, **fields}))
    return load_sweep_config(path)


def test_a_metric_no_task_logs_is_refused(tmp_path, tiny_config):
    assert load_sweep(tmp_path, tiny_config, metric="train_loss", mode="min").metric == "train_loss"
    with pytest.raises(
        ConfigError, match=r"metric: 'val_accuracy' is not logged .*'classification'; expected .*val_acc"
    ):
        load_sweep(tmp_path, tiny_config, metric="val_accuracy")
    tsp = yaml.safe_load((REPO_ROOT / "configs" / "train" / "tsp20_am_tinv.yaml").read_text())
    with pytest.raises(ConfigError, match=r"metric: 'val_acc' .* task 'tsp'; expected .*val_gap"):
        load_sweep(tmp_path, tsp, metric="val_acc")


@pytest.mark.parametrize("scheduler", ["asha", "median_stop"])
def test_a_grace_period_longer_than_the_run_is_refused(tmp_path, tiny_config, scheduler):
    assert load_sweep(tmp_path, tiny_config, scheduler={"name": scheduler, "grace_period": 2})  # 2 epochs: fits
    with pytest.raises(ConfigError, match=r"scheduler.grace_period: 3 is more than base.epochs \(2\)"):
        load_sweep(tmp_path, tiny_config, scheduler={"name": scheduler, "grace_period": 3})


@pytest.mark.parametrize(
    "domain, expected",
    [
        ({"loguniform": [1e-4, float("inf")]}, "bounds must be finite"),
        ({"loguniform": [float("nan"), 1e-2]}, "bounds must be finite"),
        ({"uniform": [float("-inf"), 0.1]}, "bounds must be finite"),
        ({"loguniform": [0.0, 1e-2]}, "loguniform bounds must be positive"),
        ({"loguniform": [-1e-3, 1e-2]}, "loguniform bounds must be positive"),
    ],
)
def test_non_finite_or_non_positive_bounds_name_the_space_path(tmp_path, tiny_config, domain, expected):
    with pytest.raises(ConfigError, match=rf"space.optimizer.lr: {expected}"):
        load_sweep(tmp_path, tiny_config, space={"optimizer.lr": domain})


def test_duplicate_keys_in_a_sweep_are_refused(tmp_path, tiny_config):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny_config))
    (tmp_path / "s.yaml").write_text("name: s\nbase: base.yaml\nmetric: val_acc\nmetric: test_acc\n")
    with pytest.raises(ConfigError, match=r"s.yaml: line 4: duplicate key 'metric' \(first given on line 3\)"):
        load_sweep_config(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("name: s\nbase: base.yaml\n")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny_config) + "epochs: 3\n")
    with pytest.raises(ConfigError, match=r"base.yaml: line \d+: duplicate key 'epochs'"):
        load_sweep_config(tmp_path / "s.yaml")


def test_validate_says_how_many_trials_it_did_not_check(tmp_path, tiny_config, monkeypatch, capsys):
    import functools

    import geosweep.sweep.config
    from geosweep.cli import main

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny_config))
    space = {"seed": {"grid": [0, 1, 2]}, "optimizer.lr": {"uniform": [0.001, 0.01]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": "base.yaml", "space": space}))
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith("ok (6 of 6 trial configurations checked)")
    limited = functools.partial(geosweep.sweep.config.validate_every_trial, limit=4)  # the real limit is 10,000
    monkeypatch.setattr(geosweep.sweep.config, "validate_every_trial", limited)
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0
    assert "ok (4 of 6 trial configurations checked; the other 2 were not checked)" in capsys.readouterr().out


def test_a_space_over_the_trials_resources_is_refused(tiny_config):
    # Ray reserves each trial's resources from base.scaling before any trial is sampled.
    with pytest.raises(ValueError, match=r"space: 'scaling.num_workers' cannot vary: .* set it there"):
        sweep(tiny_config, space={"scaling.num_workers": {"grid": [1, 2]}})
