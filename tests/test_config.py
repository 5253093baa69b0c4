import contextlib
from pathlib import Path

import psutil
import pydantic
import pytest
import ray

from geosweep.cli import main
from geosweep.config import ConfigError, RunConfig, apply_overrides, load_run_config, parse_run_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO_ROOT / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_names_its_command(path):
    assert isinstance(load_run_config(path), RunConfig)
    assert f"geosweep train configs/train/{path.name}" in path.read_text().split("\n\n")[0]


def test_config_is_frozen(tiny_config):
    config = parse_run_config(tiny_config)
    with pytest.raises(pydantic.ValidationError, match=r"epochs\n  Instance is frozen"):
        config.epochs = 3


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"optimiser": {}}, r"optimiser: unknown key \(valid keys here: task, dataset, .*optimizer"),
        ({"epochs": "many"}, r"epochs: Input should be a valid integer.*got 'many'"),
        ({"epochs": 0}, r"epochs: Input should be greater than or equal to 1 \(got 0\)"),
        ({"backbone": {"name": "pointnot"}}, r"backbone.name: unknown backbone 'pointnot'; valid choices: .*pointnet"),
        ({"representation": {"name": "tinv"}}, r"unknown representation 'tinv'; valid choices: .*raw, .*tinv_mds"),
        ({"scaling": {"num_workers": 2, "gpus": 1}}, r"scaling.gpus: unknown key \(valid keys here: num_workers"),
        (
            {"representation": {"name": "tinv_mds", "kwargs": {"sign_rule": "sum"}}},
            r"representation.kwargs: representation 'tinv_mds': argument 'sign_rule'.*'third_moment'",
        ),
        (
            {"backbone": {"name": "pointnet", "kwargs": {"dropout": 1.5}}},
            r"backbone.kwargs: backbone 'pointnet': argument 'dropout': Input should be less than 1",
        ),
        (
            {"dataset": {"name": "shapes", "rotation": {"test": "o3"}}},
            r"dataset.rotation.test: Input should be 'none', 'z' or 'so3'",
        ),
    ],
)
def test_bad_configs_name_the_field_value_and_choices(tiny_config, change, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_run_config({**tiny_config, **change})


def test_missing_required_field(tiny_config):
    del tiny_config["backbone"]
    with pytest.raises(ConfigError, match="backbone: required field is missing"):
        parse_run_config(tiny_config)


def test_overrides_reach_every_interface_path(tiny_config):
    raw = apply_overrides(
        tiny_config,
        [
            "representation.name=raw",
            "backbone.name=pointnet",
            "hypernet.name=none",
            "dataset.name=shapes",
            "dataset.kwargs.num_points=32",
            "backbone.kwargs.dropout=0.2",
            "epochs=5",
            "seed=7",
        ],
    )
    config = parse_run_config(raw)
    assert (config.representation.name, config.epochs, config.seed) == ("raw", 5, 7)
    assert config.dataset.kwargs["num_points"] == 32 and config.backbone.kwargs["dropout"] == 0.2
    assert tiny_config["epochs"] == 2, "overrides must not modify their input"


def test_malformed_override(tiny_config):
    with pytest.raises(ConfigError, match="expected dotted.path=value"):
        apply_overrides(tiny_config, ["epochs"])


def ray_processes_of_this_test_process() -> set[int]:
    """PIDs of this process's descendants that are Ray's own (a raylet or a GCS server)."""
    pids = set()
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # it ended meanwhile
            if any(name in " ".join(process.cmdline()) for name in ("raylet", "gcs_server")):
                pids.add(process.pid)
    return pids


def test_validate_command_reports_errors_without_starting_ray(tmp_path, capsys):
    if ray.is_initialized():  # an earlier test's instance: the next test that needs one starts it again
        ray.shutdown()
    before = ray_processes_of_this_test_process()
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: {name: shapes}\nrepresentation: {name: nope}\nbackbone: {name: pointnet}\nepochs: 1\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "unknown representation 'nope'" in err
    assert main(["validate", str(path), "--set", "representation.name=raw"]) == 0
    assert not ray.is_initialized()
    assert ray_processes_of_this_test_process() <= before


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read YAML"):
        load_run_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_run_config(tmp_path / "list.yaml")
