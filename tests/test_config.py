import contextlib
import re
from pathlib import Path

import psutil
import pydantic
import pytest
import ray

from geosweep.cli import main
from geosweep.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    flatten,
    load_run_config,
    load_yaml,
    parse_run_config,
)

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
        (
            {"optimizer": {"name": "sgd", "schedule": {"name": "linear"}}},
            r"optimizer.schedule: Input tag 'linear' .* expected tags: 'constant', 'cosine', 'step'",
        ),
        (
            {"optimizer": {"name": "sgd", "schedule": {"name": "cosine", "step_size": 3}}},
            r"optimizer.schedule.step_size: unknown key \(valid keys here: name, min_lr\)",
        ),
        (
            {"optimizer": {"name": "sgd", "schedule": {"name": "step", "gamma": 0.5}}},
            r"optimizer.schedule.step_size: required field is missing",
        ),
        (
            {"optimizer": {"name": "adam", "momentum": 0.9}},
            r"optimizer.momentum: momentum applies to sgd only, not 'adam'",
        ),
        ({"optimizer": {"name": "sgd", "momentum": 1.0}}, r"optimizer.momentum: Input should be less than 1"),
        (
            {"dataset": {"name": "shapes", "augmentation": {"scale": {"low": 1.5, "high": 0.5}}}},
            r"dataset.augmentation.scale: low \(1.5\) is above high \(0.5\); expected low <= high",
        ),
        (
            {"dataset": {"name": "shapes", "augmentation": {"jiter": {"sigma": 0.01, "clip": 0.05}}}},
            r"dataset.augmentation.jiter: unknown key \(valid keys here: scale, translate, jitter\)",
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


# --- checked at validation, before Ray starts ---


def test_an_omitted_required_component_argument_is_named(tiny_config):
    tiny_config["dataset"] = {"name": "modelnet40"}  # no kwargs at all: `path` is required
    expected = r"dataset.kwargs: dataset 'modelnet40': missing required argument 'path' \(set dataset.kwargs.path\)"
    with pytest.raises(ConfigError, match=expected):
        parse_run_config(tiny_config)


def test_duplicate_yaml_keys_name_the_file_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "dataset: {name: shapes}\nrepresentation: {name: raw}\nbackbone: {name: pointnet}\nepochs: 1\nepochs: 2"
    )
    with pytest.raises(ConfigError, match=r"dup.yaml: line 5: duplicate key 'epochs' \(first given on line 4\)"):
        load_run_config(path)
    path.write_text("dataset:\n  name: shapes\n  name: tsp\nrepresentation: {name: raw}\nbackbone: {name: pointnet}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml: line 3: duplicate key 'name' \(first given on line 2\)"):
        load_run_config(path)
    with pytest.raises(ConfigError, match=r"--set .*duplicate key 'a'"):
        apply_overrides({}, ["backbone.kwargs={a: 1, a: 2}"])


def test_yaml_merge_keys_may_still_be_overridden():
    assert load_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")["other"] == {"x": 3, "y": 2}


def test_a_batch_larger_than_a_known_training_split_is_refused(tiny_config):
    # shapes: 8 train clouds per class x 12 classes, shared by 2 workers: at most 48 per worker.
    assert parse_run_config({**tiny_config, "batch_size": 48}).batch_size == 48
    with pytest.raises(ConfigError, match=r"batch_size: 49 per worker x 2 workers is more than the 96 training clouds"):
        parse_run_config({**tiny_config, "batch_size": 49})
    tsp = REPO_ROOT / "configs" / "train" / "tsp20_am_tinv.yaml"
    with pytest.raises(ConfigError, match=r"batch_size: 128 per worker x 2 workers .*task.kwargs.epoch_size = 200"):
        load_run_config(tsp, ["task.kwargs.epoch_size=200", "batch_size=128"])


def test_a_missing_data_directory_is_refused_but_a_uri_is_not_checked(tiny_config, tmp_path):
    absent = tmp_path / "absent"
    dataset = {"name": "modelnet40", "kwargs": {"path": str(absent)}}
    with pytest.raises(ConfigError, match=rf"dataset.kwargs.path: directory '{re.escape(str(absent))}' does not exist"):
        parse_run_config({**tiny_config, "dataset": dataset})
    absent.mkdir()
    assert parse_run_config({**tiny_config, "dataset": dataset}).dataset.kwargs["path"] == str(absent)
    uri = {"name": "modelnet40", "kwargs": {"path": "s3://bucket/modelnet40"}}
    assert parse_run_config({**tiny_config, "dataset": uri}).dataset.kwargs["path"].startswith("s3://")


def test_a_data_dir_created_on_first_use_must_be_creatable(tmp_path):
    tsp = REPO_ROOT / "configs" / "train" / "tsp20_am_tinv.yaml"
    creatable = tmp_path / "not" / "yet"
    assert load_run_config(tsp, [f"dataset.kwargs.data_dir={creatable}"]).dataset.kwargs["data_dir"] == str(creatable)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"dataset.kwargs.data_dir: '.*file/tsp': .*file is not a directory"):
        load_run_config(tsp, [f"dataset.kwargs.data_dir={tmp_path / 'file' / 'tsp'}"])


def test_an_unwritable_cache_dir_is_refused(tiny_config, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"cache.dir: .* is not a directory"):
        parse_run_config({**tiny_config, "cache": {"dir": str(tmp_path / "file" / "cache")}})
    # Root may write anywhere, so the permission itself is stubbed: the check must ask for it.
    monkeypatch.setattr("geosweep.data.sources.os.access", lambda path, mode: False)
    expected = rf"cache.dir: '{re.escape(str(tmp_path / 'new'))}': cannot be created: {re.escape(str(tmp_path))} is not"
    with pytest.raises(ConfigError, match=expected):
        parse_run_config({**tiny_config, "cache": {"dir": str(tmp_path / "new")}})
    with pytest.raises(ConfigError, match=r"cache.dir: .*: directory is not writable"):
        parse_run_config({**tiny_config, "cache": {"dir": str(tmp_path)}})


def test_augmentation_and_schedule_are_recorded_as_run_params(tiny_config):
    tiny_config["dataset"]["augmentation"] = {
        "scale": {"low": 0.8, "high": 1.25, "per_axis": True},
        "translate": {"low": -0.2, "high": 0.2},
    }
    tiny_config["optimizer"] = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": {"name": "cosine"}}
    params = flatten(parse_run_config(tiny_config))  # what tracking.start_run logs as the run's MLflow params
    assert {
        "dataset.augmentation.scale.low": "0.8",
        "dataset.augmentation.scale.high": "1.25",
        "dataset.augmentation.scale.per_axis": "True",
        "dataset.augmentation.translate.low": "-0.2",
        "dataset.augmentation.translate.high": "0.2",
        "dataset.augmentation.jitter": "None",
        "optimizer.momentum": "0.9",
        "optimizer.schedule.name": "cosine",
        "optimizer.schedule.min_lr": "0.0",
    }.items() <= params.items()


def test_tsp_takes_no_point_cloud_augmentation():
    tsp = REPO_ROOT / "configs" / "train" / "tsp20_am_tinv.yaml"
    with pytest.raises(ConfigError, match=r"dataset.augmentation applies to point clouds"):
        load_run_config(tsp, ["dataset.augmentation.jitter={sigma: 0.01, clip: 0.05}"])
    assert load_run_config(tsp, ["optimizer.schedule={name: step, step_size: 1, gamma: 0.99}"]).optimizer.schedule


def test_the_dgcnn_config_is_the_papers_modelnet40_recipe():
    config = load_run_config(REPO_ROOT / "configs" / "train" / "modelnet40_dgcnn_paper.yaml")
    optimizer, dataset, backbone = config.optimizer, config.dataset, config.backbone
    assert (optimizer.name, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
    assert (optimizer.schedule.name, optimizer.schedule.min_lr, config.epochs) == ("cosine", 0.001, 250)
    assert (config.batch_size * config.scaling.num_workers, dataset.kwargs["num_points"]) == (32, 1024)
    assert (backbone.name, backbone.kwargs["k"]) == ("dgcnn", 20)
    scale, translate = dataset.augmentation.scale, dataset.augmentation.translate
    assert (scale.low, scale.high, scale.per_axis) == (pytest.approx(2 / 3, abs=1e-4), 1.5, True)
    assert (translate.low, translate.high, dataset.augmentation.jitter) == (-0.2, 0.2, None)
    assert (dataset.rotation.train, dataset.rotation.test) == ("none", "none")
