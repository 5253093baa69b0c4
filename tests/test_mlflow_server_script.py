"""deploy/mlflow/server.sh, the cluster's tracking server, run for real on loopback with a SQLite store.

It must refuse requests without credentials, serve a client whose credentials are in
~/.mlflow/credentials, and put no secret on any process's command line.
"""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from geosweep.localhost import free_port
from geosweep.tracking.server import stop_group

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "mlflow" / "server.sh"
ADMIN_PASSWORD = "correct-horse-battery-staple"


def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s  # a hang guard, not a verdict
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)


def test_the_shipped_server_requires_credentials_and_keeps_secrets_off_command_lines(tmp_path, monkeypatch):
    ini = tmp_path / "basic_auth.ini"  # the shipped file with the user store on SQLite instead of PostgreSQL
    shipped = (SCRIPT.parent / "basic_auth.ini").read_text()
    ini.write_text(
        shipped.replace("postgresql://mlflow@postgres.internal:5432/mlflow_auth", f"sqlite:///{tmp_path}/a.db")
    )
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # the venv's mlflow
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key",
        "MLFLOW_SERVER_HOST": "127.0.0.1",
        "MLFLOW_SERVER_PORT": str(port),
        "MLFLOW_SERVER_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
    }
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  cwd=tmp_path, start_new_session=True)  # fmt: skip  # one call, its options
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, log)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401

        home = tmp_path / "home"
        (home / ".mlflow").mkdir(parents=True)
        (home / ".mlflow" / "credentials").write_text(
            f"[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = {ADMIN_PASSWORD}\n"
        )
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        client = MlflowClient(url)
        run = client.create_run(client.create_experiment("authenticated"))
        client.log_metric(run.info.run_id, "val_acc", 0.5)
        assert client.get_run(run.info.run_id).data.metrics == {"val_acc": 0.5}

        processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        command_lines = " ".join(" ".join(p.cmdline()) for p in processes)
        assert "mlflow" in command_lines and ADMIN_PASSWORD not in command_lines
        assert "0.0.0.0" not in command_lines
    finally:
        if server.poll() is None:
            stop_group(server)
