"""Runs to rows: which config params name a configuration, and reading runs changes nothing in MLflow."""

from mlflow.entities import Param, Run, RunData, RunInfo
from mlflow.tracking import MlflowClient

from geosweep.comparison.rows import ERROR_TAG, configuration_label, distinguishing_params, run_rows
from report.sweep_store import fresh_store


def run(status: str = "FINISHED", **params: str) -> Run:
    info = RunInfo(
        run_id=str(len(params)),
        experiment_id="1",
        user_id="",
        status=status,
        start_time=1_000,
        end_time=61_000,
        lifecycle_stage="active",
        run_name="r",
    )
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
    assert [row.status for row in rows] == ["finished", "finished", "finished", "failed"]
    assert rows[0].seconds == 60.0 and rows[0].axes["seed"] == "0"


def test_a_kwarg_that_tells_two_runs_apart_is_kept():
    default = {"representation__name": "tinv_mds", "representation__kwargs": "{}"}
    explicit = {"representation__name": "tinv_mds", "representation__kwargs__sign_rule": "abs_weighted"}
    third = {"representation__name": "tinv_mds", "representation__kwargs__sign_rule": "third_moment"}
    assert distinguishing_params([run(**default), run(**explicit), run(**third)]) == ["representation.kwargs.sign_rule"]


def test_rows_of_stored_runs_leave_the_runs_as_they_were(tmp_path, tmp_path_factory):
    # A trial the scheduler stopped is still RUNNING until the sweep's driver ends it: reading it must not.
    client = MlflowClient(fresh_store(tmp_path_factory, tmp_path))
    experiment = client.create_experiment("rows")
    # Its workers' teardown raised: not an error of the row while the run is not failed.
    running = client.create_run(experiment, run_name="stopped", tags={ERROR_TAG: "The actor is dead"})
    failed = client.create_run(experiment, run_name="failed", tags={ERROR_TAG: "ValueError: max_points"})
    client.set_terminated(failed.info.run_id, "FAILED")
    for run_id, lr in ((running.info.run_id, "0.1"), (failed.info.run_id, "0.2")):
        client.log_param(run_id, "optimizer.lr", lr)
    before = client.search_runs([experiment], order_by=["attributes.start_time ASC"])

    rows = run_rows(before)

    assert [(row.status, row.error, row.axes) for row in rows] == [
        ("running", "", {"optimizer.lr": "0.1", "seed": None}),
        ("failed", "ValueError: max_points", {"optimizer.lr": "0.2", "seed": None}),
    ]
    after = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    assert [(r.info.status, r.info.end_time, r.data.tags) for r in after] == [
        (r.info.status, r.info.end_time, r.data.tags) for r in before
    ]
