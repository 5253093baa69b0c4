"""Runs to rows: which config params name a configuration."""

from mlflow.entities import Param, Run, RunData, RunInfo

from geosweep.report.collect import distinguishing_params, run_rows
from geosweep.sweep.leaderboard import configuration_label


def run(status: str = "FINISHED", **params: str) -> Run:
    info = RunInfo(run_id=str(len(params)), experiment_id="1", user_id="", status=status, start_time=1_000,
                   end_time=61_000, lifecycle_stage="active", run_name="r")  # fmt: skip
    return Run(info, RunData(params=[Param(key.replace("__", "."), value) for key, value in params.items()]))


def test_a_conditional_component_is_named_by_its_name_alone():
    none = {
        "hypernet__name": "none",
        "hypernet__kwargs": "{}",
        "epochs": "3",
        "tracking__tracking_uri": "sqlite:///a.db",
    }
    mip = {
        "hypernet__name": "mip",
        "hypernet__kwargs__hidden": "[16]",
        "epochs": "3",
        "tracking__tracking_uri": "sqlite:///b.db",
    }
    runs = [run(**none, seed="0"), run(**none, seed="1"), run(**mip, seed="0"), run("FAILED", **mip, seed="1")]
    assert distinguishing_params(runs) == ["hypernet.name"]  # not the seed, the constant epochs, nor the store
    rows = run_rows(runs)
    assert [configuration_label(row) for row in rows] == ["hypernet.name=none"] * 2 + ["hypernet.name=mip"] * 2
    assert [row["status"] for row in rows] == ["finished", "finished", "finished", "failed"]
    assert rows[0]["seconds"] == 60.0 and rows[0]["sampled"]["seed"] == "0"


def test_a_kwarg_that_tells_two_runs_apart_is_kept():
    default = {"representation__name": "tinv_mds", "representation__kwargs": "{}"}
    explicit = {"representation__name": "tinv_mds", "representation__kwargs__sign_rule": "abs_weighted"}
    third = {"representation__name": "tinv_mds", "representation__kwargs__sign_rule": "third_moment"}
    assert distinguishing_params([run(**default), run(**explicit), run(**third)]) == ["representation.kwargs.sign_rule"]
