"""The nightly suite config: the shipped suites, the smoke suite's derivation by overrides, readable errors."""

import itertools
from pathlib import Path

import pytest
import yaml

from geosweep.config import ConfigError, parse_run_config, set_values
from geosweep.nightly.suite import PlannedFigure, PlannedRun, load_suite, plan, set_suite_values

NIGHTLY = Path(__file__).resolve().parents[2] / "configs" / "nightly"


def runs_by_name(suite) -> dict[str, PlannedRun]:
    return {entry.name: entry for entry in plan(suite) if isinstance(entry, PlannedRun)}


@pytest.fixture(scope="module")
def suite():
    return load_suite(NIGHTLY / "suite.yaml")  # validates every entry's run config


@pytest.fixture(scope="module")
def smoke():
    return load_suite(NIGHTLY / "smoke.yaml")


def test_every_shipped_suite_is_tested_here_and_its_header_gives_its_command():
    assert sorted(path.name for path in NIGHTLY.glob("*.yaml")) == ["smoke.yaml", "suite.yaml"]
    for path in NIGHTLY.glob("*.yaml"):
        header = "".join(itertools.takewhile(lambda line: line.startswith("#"), path.read_text().splitlines(True)))
        assert f"python jobs/nightly.py --config configs/nightly/{path.name}" in header, path.name


def test_the_suite_is_the_cross_product_with_fixed_seeds_tested_on_so3(suite):
    entries = plan(suite)
    runs = {entry.name: entry for entry in entries if isinstance(entry, PlannedRun)}
    assert len(runs) == 12 + 2
    for representation in ("raw", "tinv_mds"):
        tsp = runs[f"tsp20-{representation}"]
        assert (tsp.config.task.name, tsp.config.representation.name, tsp.config.seed) == ("tsp", representation, 0)
        assert "test_gap/rotated" in tsp.metrics
        assert tsp.config.representation.kwargs.get("centre", True) is (representation != "raw")  # Kool's input
    for backbone in ("pointnet", "dgcnn"):
        for representation in ("raw", "tinv_mds", "fa"):
            for hypernet in ("none", "mip"):
                config = runs[f"shapes-{backbone}-{representation}-{hypernet}"].config
                assert (config.backbone.name, config.representation.name, config.hypernet.name) == (
                    backbone,
                    representation,
                    hypernet,
                )
                assert (
                    config.seed == 0 and config.dataset.rotation.train == "z" and config.dataset.rotation.test == "so3"
                )
                assert config.tracking.experiment == "nightly"
    figures = [entry.name for entry in entries if isinstance(entry, PlannedFigure)]
    assert figures == ["platform_overhead", "representation_throughput"]  # first: measured before Ray starts
    assert suite.baseline_window >= 1


def test_smoke_derives_from_the_suite_by_overrides_only(suite, smoke):
    raw = yaml.safe_load((NIGHTLY / "smoke.yaml").read_text())
    assert set(raw) == {"extends", "overrides"}
    full, tiny = runs_by_name(suite), runs_by_name(smoke)
    assert set(tiny) < set(full) and len(tiny) == 2
    for name, entry in tiny.items():
        # The smoke run is the suite's run with the smoke's run_overrides on top, and nothing else.
        expected = set_values(full[name].config.model_dump(mode="json"), smoke.run_overrides)
        assert entry.config == parse_run_config(expected)
        assert entry.config.epochs < full[name].config.epochs and entry.config.scaling.num_workers == 1
    assert smoke.name != suite.name  # the smoke's nights are never the full suite's baseline


def test_set_reaches_into_override_mappings_as_one_run_config_path():
    raw = {"run_overrides": {"seed": 0}, "runs": {"a": {"overrides": {}}}}
    result = set_suite_values(
        raw, {"run_overrides.optimizer.lr": 1e-6, "runs.a.overrides.backbone.name": "dgcnn", "baseline_window": 3}
    )
    assert result == {
        "run_overrides": {"seed": 0, "optimizer.lr": 1e-6},
        "baseline_window": 3,
        "runs": {"a": {"overrides": {"backbone.name": "dgcnn"}}},
    }
    suite = load_suite(NIGHTLY / "smoke.yaml", ["run_overrides.optimizer.lr=1e-6", "baseline_window=2"])
    assert suite.baseline_window == 2
    assert all(entry.config.optimizer.lr == 1e-6 for entry in runs_by_name(suite).values())


def write_suite(tmp_path: Path, **fields) -> Path:
    suite = {
        "name": "t",
        "metrics": ["val_acc"],
        "tolerances": {"val_acc": {"better": "higher", "absolute": 0.05}},
        "runs": {"r": {"config": str(NIGHTLY.parent / "train" / "shapes_pointnet_raw.yaml")}},
        **fields,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"baseline_window": 0}, "baseline_window: Input should be greater than or equal to 1"),
        (
            {"tolerances": {"val_acc": {"better": "up"}}},
            "tolerances.val_acc.better: Input should be 'higher' or 'lower'",
        ),
        ({"metrics": ["val_acc", "val_gap"]}, "runs.r.metrics: no tolerance for 'val_gap' (add tolerances.val_gap)"),
        (
            {"runs": {"r": {"confg": "x.yaml"}}},
            "runs.r.confg: unknown key (valid keys here: config, overrides, matrix, metrics)",
        ),
        (
            {"runs": {"r-{backbone}": {"config": "x.yaml"}}},
            "name placeholders ['backbone'] must be exactly the matrix axes []",
        ),
        ({"select": ["nope"]}, "select: unknown entries ['nope']; valid names: r"),
        ({"metrics": []}, "runs.r: tracks no metric"),
        (
            {"runs": {"r '{x}": {"config": "x.yaml", "matrix": {"x": {"a": {}}}}}},
            'entry names may hold only letters, digits and _ . - (got ["r \'a"])',
        ),
        (
            {"performance": {"p": {"figure": "platform_overhead", "config": "x.yaml", "epochs": 2, "warmup": 2}}},
            "performance.p: epochs (2) must exceed warmup (2): no epoch would be measured",
        ),
        (
            {"performance": {"p": {"figure": "representation_throughput", "cloud": 3}}},
            "performance.p.cloud: unknown key (valid keys here: figure, clouds, points, oracle_clouds)",
        ),
    ],
)
def test_a_bad_suite_names_the_field(tmp_path, fields, expected):
    with pytest.raises(ConfigError) as error:
        load_suite(write_suite(tmp_path, **fields))
    assert expected in str(error.value) and str(tmp_path / "suite.yaml") in str(error.value)


def test_a_bad_run_config_names_the_entry_and_the_field(tmp_path):
    path = write_suite(tmp_path, run_overrides={"backbone.name": "pointnt"})
    with pytest.raises(
        ConfigError, match=r"entry 'r': .*shapes_pointnet_raw.yaml: invalid config\n  backbone.name: unknown"
    ):
        load_suite(path)


def test_a_derived_suite_may_only_override(tmp_path):
    write_suite(tmp_path)
    derived = tmp_path / "derived.yaml"
    derived.write_text(yaml.safe_dump({"extends": "suite.yaml", "overrides": {"select": ["r"]}, "runs": {}}))
    with pytest.raises(
        ConfigError, match=r"derived.yaml: a derived suite holds only `extends: FILE` and an `overrides:`"
    ):
        load_suite(derived)
    loop = tmp_path / "loop.yaml"
    loop.write_text(yaml.safe_dump({"extends": "loop.yaml"}))
    with pytest.raises(ConfigError, match="`extends` loops back"):
        load_suite(loop)


def test_a_duplicate_key_in_a_suite_names_the_file_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(f"extends: {NIGHTLY / 'smoke.yaml'}\noverrides: {{}}\nextends: {NIGHTLY / 'suite.yaml'}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml: line 3: duplicate key 'extends' \(first given on line 1\)"):
        load_suite(path)
