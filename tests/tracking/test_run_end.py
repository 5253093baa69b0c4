"""Runs end quietly on a tracking server: MLflow's own end prints two links per run, a pair per trial on a cluster."""

import os

import pytest
from mlflow.tracking import MlflowClient

from geosweep.tracking import terminate_run
from geosweep.tracking.mlflow_run import QUIET_END
from geosweep.tracking.server import local_server

pytestmark = pytest.mark.integration  # a real `mlflow server` (no Ray)


def test_a_run_ended_on_a_server_prints_no_links_and_records_its_status_and_end(tmp_path, capfd, monkeypatch):
    [switch] = QUIET_END
    monkeypatch.delenv(switch, raising=False)
    with local_server(tmp_path) as uri:
        client = MlflowClient(uri)
        experiment = client.create_experiment("ends")
        quiet, loud = (client.create_run(experiment).info.run_id for _ in range(2))
        capfd.readouterr()
        terminate_run(client, quiet, "KILLED")
        assert "View run" not in capfd.readouterr().out
        client.set_terminated(loud, "FINISHED")  # what terminate_run replaces prints them, so the check can fail
        assert "View run" in capfd.readouterr().out
        ended = client.get_run(quiet).info
        assert ended.status == "KILLED" and ended.end_time is not None
    assert switch not in os.environ  # set for the one call only
