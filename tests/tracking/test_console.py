"""Ending runs on a tracking server leaves the console to geosweep: no MLflow "View run ... at" line per run."""

import subprocess
import sys


def test_ending_a_run_on_a_server_prints_no_view_run_line(tmp_path):
    # A fresh interpreter: the setting is made on import of geosweep.tracking, as in every trial's process.
    script = f"""
from pathlib import Path
from mlflow.tracking import MlflowClient
from geosweep.tracking import end_run
from geosweep.tracking.server import local_server
with local_server(Path({str(tmp_path)!r})) as uri:
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("console")).info.run_id
    print("created", flush=True)
    end_run(uri, run_id, succeeded=True)
    assert client.get_run(run_id).info.status == "FINISHED"
    print("ended", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "created" in done.stdout and "ended" in done.stdout
    assert "View run" not in done.stdout and "View experiment" not in done.stdout, done.stdout
