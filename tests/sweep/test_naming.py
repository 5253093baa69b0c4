"""Trial run names without Ray: the axes that vary, short parts, a suffix only on collision, names kept on resume."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from geosweep.config import load_run_config
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.naming import keep_unique, trial_run_name
from report.sweep_store import fresh_store

BASE = Path(__file__).parents[2] / "configs/train/shapes_pointnet_tinv.yaml"  # never trained here: only named


def sweep_of(space: dict, seeds: int = 1) -> SweepConfig:
    return SweepConfig.model_validate(
        {"name": "names", "base": load_run_config(BASE).model_dump(mode="json"), "space": space, "seeds": seeds}
    )


def test_components_and_seeds_that_vary_name_the_trial():
    sweep = sweep_of(
        {
            "representation": {"grid": [{"name": "raw"}, {"name": "tinv_mds"}]},
            "backbone": {"grid": [{"name": "pointnet"}, {"name": "dgcnn"}]},
            "hypernet": {"grid": [{"name": "none"}, {"name": "mip"}]},
            "epochs": {"grid": [3]},  # one value: does not vary, no part
        },
        seeds=2,
    )
    values = {"representation": {"name": "tinv_mds"}, "backbone": {"name": "dgcnn"}, "hypernet": {"name": "mip"}}
    assert trial_run_name(sweep, {**values, "epochs": 3, "seed": 1}) == "tinv_mds-dgcnn-mip-s1"


def test_hyperparameters_read_as_short_key_value_parts():
    sweep = sweep_of(
        {
            "optimizer.lr": {"loguniform": [0.0003, 0.003]},
            "dataset.rotation.train": {"grid": ["z", "so3"]},
            "representation.name": {"grid": ["raw", "fa"]},  # a component's name: the value alone
            # Two of one name: the kwargs that tell them apart join the name.
            "hypernet": {"grid": [{"name": "mip", "kwargs": {"hidden": [16]}}, {"name": "mip", "kwargs": {}}]},
        }
    )
    values = {
        "optimizer.lr": 0.0012345,
        "dataset.rotation.train": "so3",
        "representation.name": "fa",
        "hypernet": {"name": "mip", "kwargs": {"hidden": [16]}},
    }
    assert trial_run_name(sweep, values) == "lr=0.00123-train=so3-fa-mip-hidden=[16]"
    # Keys keep as many dotted parts as it takes to tell them apart.
    twins = sweep_of({"optimizer.lr": {"grid": [0.1, 0.2]}, "schedule.lr": {"grid": [1, 2]}})
    assert trial_run_name(twins, {"optimizer.lr": 0.1, "schedule.lr": 2}) == "optimizer.lr=0.1-schedule.lr=2"


def test_a_sweep_where_nothing_varies_names_its_trials_after_itself():
    assert trial_run_name(sweep_of({"epochs": {"grid": [3]}}), {"epochs": 3}) == "names"


def test_a_suffix_only_on_collision_and_a_name_once_given_stays(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment("names")
    parent = client.create_run(experiment, run_name="names").info.run_id

    def create(name: str, trial_id: str) -> str:
        tags = {"mlflow.parentRunId": parent, "sweep.trial_id": trial_id}
        return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    first = create("raw-s0", "ab_00000")
    assert keep_unique(client, first, parent, "ab_00000") == "raw-s0"  # no one else holds it
    # Two trials that created one name at once: the first to look sees the other and takes its index;
    # the second then holds the name alone.
    racing = [(create("raw-s1", f"ab_0000{i}"), f"ab_0000{i}") for i in (1, 2)]
    assert [keep_unique(client, run, parent, trial) for run, trial in racing] == ["raw-s1#1", "raw-s1"]
    # A later namesake of a name already held takes its index; the holder keeps its name.
    late = create("raw-s0", "ab_00013")
    assert keep_unique(client, late, parent, "ab_00013") == "raw-s0#13"
    # Another sweep run's namesake is no collision.
    other_parent = client.create_run(experiment, run_name="names").info.run_id
    elsewhere = client.create_run(experiment, run_name="raw-s0", tags={"mlflow.parentRunId": other_parent})
    assert keep_unique(client, elsewhere.info.run_id, other_parent, "cd_00000") == "raw-s0"

    names = [run.info.run_name for run in client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")]
    assert sorted(names) == ["raw-s0", "raw-s0#13", "raw-s1", "raw-s1#1"]


@pytest.mark.parametrize("trial_id, index", [("3f2a1_00007", "7"), ("run_trial_00012", "12"), ("odd", "odd")])
def test_the_suffix_is_the_trials_number(trial_id, index, tmp_path, tmp_path_factory):
    client = MlflowClient(fresh_store(tmp_path_factory, tmp_path))
    experiment = client.create_experiment("names")
    parent = client.create_run(experiment).info.run_id
    runs = [client.create_run(experiment, run_name="x", tags={"mlflow.parentRunId": parent}) for _ in range(2)]
    assert keep_unique(client, runs[1].info.run_id, parent, trial_id) == f"x#{index}"
