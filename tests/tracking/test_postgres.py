import psutil
import psycopg
import pytest
from mlflow.tracking import MlflowClient

from geosweep.tracking.postgres import local_postgres
from geosweep.tracking.server import local_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("postgres_installed")]


def postgres_processes() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"}


def test_an_mlflow_server_on_postgres_keeps_runs_in_postgres_and_everything_stops(tmp_path):
    before = postgres_processes()
    with local_postgres() as database, local_server(tmp_path, backend_store_uri=database) as tracking_uri:
        assert postgres_processes() - before  # the server and its own processes run
        client = MlflowClient(tracking_uri)
        run = client.create_run(client.create_experiment("postgres"))
        client.log_metric(run.info.run_id, "val_acc", 0.75, step=3)
        with psycopg.connect(database.replace("postgresql+psycopg", "postgresql")) as db:
            rows = db.execute("SELECT key, value, step FROM metrics WHERE run_uuid = %s", [run.info.run_id]).fetchall()
        assert rows == [("val_acc", 0.75, 3)]
    assert postgres_processes() - before == set()


def test_it_listens_on_loopback_only():
    with local_postgres() as database, psycopg.connect(database.replace("postgresql+psycopg", "postgresql")) as db:
        assert db.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
