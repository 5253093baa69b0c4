"""The sweep's best model in the Model Registry, without Ray: real trial runs with real logged models, run after run.

Each "run of the sweep" is a parent run and trial runs as a sweep's trials leave them (params from their configs,
their last epoch's metric, their model; a trial stopped early has no model), in a real SQLite store, and for the
alias test also through a real tracking server on PostgreSQL (a cluster's registry).
"""

import mlflow.pytorch
import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from geosweep.comparison.rows import run_rows
from geosweep.config import parse_run_config
from geosweep.sweep.best_model import ALIAS, register_best_model, registered_name
from geosweep.sweep.config import SweepConfig
from geosweep.tracking import start_run
from geosweep.tracking.postgres import local_postgres
from geosweep.tracking.server import local_server
from logged_models import log_run, tiny_config, trained


@pytest.fixture
def store(tmp_path, mlflow_uri):
    config = tiny_config(tmp_path, mlflow_uri)
    return mlflow_uri, config, trained(config)


@pytest.fixture
def server_store(tmp_path, monkeypatch, postgres_installed):
    """The same, in a tracking server whose backend (the registry's too) is PostgreSQL."""
    with local_postgres() as database, local_server(tmp_path, backend_store_uri=database) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        config = tiny_config(tmp_path, uri)
        yield uri, config, trained(config)


def run_of_sweep(store, trials: list[tuple[float, int, float, bool]], metric: str = "val_acc"):
    """Trial runs (lr, seed, value of `metric`, logged a model) under a new parent; their rows and run ids."""
    uri, config, training = store
    client = MlflowClient(uri)
    _, parent = start_run(config, "sweep", {"sweep.parent": "true"})
    ids = []
    for lr, seed, value, finished in trials:
        trial = parse_run_config({**config.model_dump(mode="json"), "optimizer": {"lr": lr}, "seed": seed})
        tags = {"mlflow.parentRunId": parent}
        if finished:
            ids.append(log_run(trial, training, {metric: value}, tags))
        else:  # stopped early by the scheduler: no model
            _, run_id = start_run(trial, "stopped", tags)
            client.log_metric(run_id, metric, value, step=1)
            client.set_terminated(run_id, "KILLED")
            ids.append(run_id)
    experiment = client.get_run(parent).info.experiment_id
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    return run_rows(runs), ids


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres_server", marks=pytest.mark.integration)])
def test_the_alias_holds_the_best_configurations_model_and_moves_only_to_a_better_one(backend, request):
    store = request.getfixturevalue("store" if backend == "sqlite" else "server_store")
    uri, config, _ = store
    client = MlflowClient(uri)
    sweep = SweepConfig.model_validate({"name": "reg", "base": config.model_dump(mode="json"), "seeds": 2})
    name = registered_name("reg")

    # lr 3e-3 is best (mean 0.75 against 0.6); of its seeds only the 0.6 one finished and logged a model.
    rows, ids = run_of_sweep(
        store, [(1e-3, 0, 0.5, True), (1e-3, 1, 0.7, True), (3e-3, 0, 0.9, False), (3e-3, 1, 0.6, True)]
    )
    first = register_best_model(sweep, client, rows)
    assert (name, int(first.version), first.run_id) == ("geosweep-reg", 1, ids[3])  # a server's versions are str
    assert int(client.get_model_version_by_alias(name, ALIAS).version) == 1
    assert first.tags["sweep.metric_mean"] == repr(0.75)
    assert "optimizer.lr=0.003: val_acc 0.75 (mean over 2 seeds" in first.description
    assert type(mlflow.pytorch.load_model(f"models:/{name}@{ALIAS}")).__name__ == "InvariantModel"

    # A re-run that does worse (0.7 < 0.75) leaves the alias, and registers nothing.
    rows, _ = run_of_sweep(store, [(1e-2, 0, 0.7, True), (1e-2, 1, 0.7, True)])
    assert int(register_best_model(sweep, client, rows).version) == 1
    # One that does better moves it to a new version of its model; finishing that run again (resume) changes nothing.
    rows, ids = run_of_sweep(store, [(3e-2, 0, 0.8, True), (3e-2, 1, 0.9, True)])
    for _ in range(2):
        assert register_best_model(sweep, client, rows).run_id == ids[1]
    assert sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'")) == [1, 2]
    assert int(client.get_model_version_by_alias(name, ALIAS).version) == 2
    model = client.get_logged_model(client.get_model_version(name, 2).source.removeprefix("models:/"))
    assert model.source_run_id == ids[1] and '"version": 2' in model.tags["mlflow.modelVersions"]

    # Ranked by another metric now: that sweep's best replaces a version ranked by val_acc, however it compares.
    by_class = SweepConfig.model_validate({**sweep.model_dump(mode="json"), "metric": "val_mean_class_acc"})
    rows, _ = run_of_sweep(store, [(1e-4, 0, 0.1, True)], metric="val_mean_class_acc")
    assert int(register_best_model(by_class, client, rows).version) == 3


def test_a_sweep_whose_trials_logged_no_model_registers_nothing(store):
    uri, config, _ = store
    client = MlflowClient(uri)
    sweep = SweepConfig.model_validate({"name": "none", "base": config.model_dump(mode="json")})
    rows, _ = run_of_sweep(store, [(1e-3, 0, 0.5, False)])
    assert register_best_model(sweep, client, rows) is None
    assert client.search_registered_models() == []


def test_registering_uses_the_sweeps_store_and_leaves_the_process_wide_tracking_uri_alone(store, tmp_path, monkeypatch):
    uri, config, _ = store
    client = MlflowClient(uri)
    sweep = SweepConfig.model_validate({"name": "elsewhere", "base": config.model_dump(mode="json")})
    rows, ids = run_of_sweep(store, [(1e-3, 0, 0.5, True)])
    # The process points elsewhere through its environment only, as a user's shell may set it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    with _use_tracking_uri(None):
        version = register_best_model(sweep, client, rows)
        # Nothing pinned behind the environment's back: the next sweep of this process follows the variable.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'next.db'}")
        assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'next.db'}"
    assert version.run_id == ids[0] and client.get_model_version_by_alias(registered_name("elsewhere"), ALIAS)
