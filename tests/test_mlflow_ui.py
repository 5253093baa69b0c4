"""`mlflow server` (alias `mlflow ui`) on 127.0.0.1 over a sweep's store: its REST API and its runs page in Chromium."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from report.browser import browser_page
from report.sweep_store import shared_store

SWEEP = "ui-sweep"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(base: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def stop(server: subprocess.Popen) -> None:
    """Stop the server we started and its children (its uvicorn): its own process group, nothing else."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    deadline = time.time() + 10
    while True:  # the children exit after their parent: wait until the group is empty
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        assert time.time() < deadline, "mlflow server's children outlived it"
        time.sleep(0.2)


@pytest.fixture
def mlflow_server(tmp_path, tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """A server on a free loopback port over a store holding sweep `ui-sweep`; yields (base URL, trial run names)."""
    store = shared_store(tmp_path_factory)  # the report tests' store, if they ran first: the server only reads
    uri, names = store["uri"], store["names"]
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job-runner processes: starts in seconds
    log = (tmp_path / "server.log").open("w")
    # A session of its own: the server and its children form one process group, stopped together by its PID.
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            assert server.poll() is None, f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.time() < deadline, "mlflow server not ready after 90 s"
                time.sleep(0.3)
        yield base, names
    finally:
        stop(server)
        log.close()


def test_server_lists_the_sweep_parent_and_trial_runs(mlflow_server, tmp_path):
    base, names = mlflow_server
    experiment = call(base, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=report-tests")["experiment"]
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    found = call(base, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment["experiment_id"]], "filter": f"tags.`sweep.name` = '{SWEEP}'", "max_results": 100,
    })["runs"]  # fmt: skip
    tags = [{t["key"]: t["value"] for t in run["data"]["tags"]} for run in found]
    parents = [run for run, tag in zip(found, tags, strict=True) if tag.get("sweep.parent") == "true"]
    assert len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    children = [run for run, tag in zip(found, tags, strict=True) if tag.get("mlflow.parentRunId") == parent_id]
    assert sorted(run["info"]["run_name"] for run in children) == sorted(names) and len(children) == 8

    # The MLflow UI's runs table lists the parent; expanding it lists every trial run.
    with browser_page(tmp_path / "profile") as (page, _):
        page.goto(f"{base}/#/experiments/{experiment['experiment_id']}/runs")
        parent_row = page.locator('[role="row"]', has=page.get_by_role("link", name=SWEEP, exact=True))
        parent_row.locator('[col-id="attributes.`Run Name`"] button').first.click(timeout=60_000)
        for name in names:
            page.get_by_role("link", name=name, exact=True).wait_for(timeout=20_000)
        page.screenshot(path=str(tmp_path / "mlflow-ui.png"))
