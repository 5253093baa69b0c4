"""`ray job submit` of jobs/train.py to a real `ray start --head` on 127.0.0.1, with token auth on."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from geosweep.localhost import free_port, stop_processes_mentioning

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A token-authenticated Ray head on loopback; yields (dashboard address, client env)."""
    if ray.is_initialized():
        ray.shutdown()  # never two Ray instances on the machine
    temp_dir = tempfile.mkdtemp(prefix="gs-head-", dir="/tmp")  # short: Ray's socket paths must fit
    token_path = tmp_path_factory.mktemp("auth") / "ray_token"
    token_path.write_text(secrets.token_hex(32))
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_path),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    dashboard_port = free_port()
    start = [
        str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", "--num-cpus=2",
        f"--temp-dir={temp_dir}", "--ray-client-server-port=23001", "--disable-usage-stats",
    ]  # fmt: skip  # one argument per line would hide the command
    try:
        subprocess.run(start, env=env, check=True, capture_output=True, text=True, timeout=120)
        yield f"http://127.0.0.1:{dashboard_port}", env
    finally:
        stop_processes_mentioning(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_job_submit_trains_and_records_in_mlflow(ray_head, tiny_config, tmp_path):
    address, env = ray_head
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump({**tiny_config, "epochs": 1}))
    runtime_env = yaml.safe_dump({"env_vars": {"MLFLOW_TRACKING_URI": uri}})
    (tmp_path / "runtime_env.yaml").write_text(runtime_env)

    # timeout: a hang guard, not a verdict (~50 s here; 300+ s when other load starves Ray's nice-15 workers)
    submit = subprocess.run(
        [
            str(BIN / "ray"), "job", "submit", f"--address={address}", "--submission-id=geosweep-test-job",
            f"--working-dir={REPO_ROOT}", f"--runtime-env={tmp_path / 'runtime_env.yaml'}",
            "--", "python", "jobs/train.py", "--config", str(config_path), "--set", "tracking.experiment=jobs",
            "--storage-path", str(tmp_path / "ray"),
        ],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip  # one argument per line would hide the command
    status = subprocess.run(
        [str(BIN / "ray"), "job", "status", f"--address={address}", "geosweep-test-job"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    logs = submit.stdout[-3000:] + submit.stderr[-3000:]
    assert submit.returncode == 0 and "job 'geosweep-test-job' succeeded" in status.stdout.lower(), logs

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("jobs").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "val_acc")] == [1]


def test_job_submit_without_the_token_is_refused(ray_head, tmp_path):
    address, env = ray_head
    env = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    listing = subprocess.run(
        [str(BIN / "ray"), "job", "list", f"--address={address}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode != 0
    assert "AuthenticationError: Authentication required: Unauthorized: Missing authentication token" in listing.stderr
