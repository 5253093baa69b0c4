"""`mlflow server` (alias `mlflow ui`) on 127.0.0.1 over a sweep's store: its REST API and its runs page in Chromium."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from geosweep.tracking.server import local_server
from report.browser import browser_page
from report.sweep_store import shared_store

SWEEP = "ui-sweep"


def call(base: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def mlflow_server(tmp_path, tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """A server on a free loopback port over a store holding sweep `ui-sweep`; yields (base URL, trial run names)."""
    store = shared_store(tmp_path_factory)  # the report tests' store, if they ran first: the server only reads
    uri, names = store["uri"], store["names"]
    with local_server(tmp_path, backend_store_uri=uri) as base:
        yield base, names


def test_server_lists_the_sweep_parent_and_trial_runs(mlflow_server, tmp_path):
    base, names = mlflow_server
    experiment = call(base, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=report-tests")["experiment"]
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    found = call(
        base,
        "/api/2.0/mlflow/runs/search",
        {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.`sweep.name` = '{SWEEP}'",
            "max_results": 100,
        },
    )["runs"]
    tags = [{t["key"]: t["value"] for t in run["data"]["tags"]} for run in found]
    parents = [run for run, tag in zip(found, tags, strict=True) if tag.get("sweep.parent") == "true"]
    assert len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    children = [run for run, tag in zip(found, tags, strict=True) if tag.get("mlflow.parentRunId") == parent_id]
    assert sorted(run["info"]["run_name"] for run in children) == sorted(names) and len(children) == 8
    assert "tinv_mds-train=so3-s1" in names  # named by the axes that vary: representation, training rotation, seed
    for run in [*children, parents[0]]:  # the UI's User and Version columns
        run_tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
        assert run_tags["mlflow.user"] and run_tags["mlflow.source.git.commit"] == run_tags["git.sha"] != "unknown"

    # The MLflow UI's runs table lists the parent; expanding it lists every trial run.
    with browser_page(tmp_path / "profile") as (page, _):
        page.goto(f"{base}/#/experiments/{experiment['experiment_id']}/runs")
        parent_row = page.locator('[role="row"]', has=page.get_by_role("link", name=SWEEP, exact=True))
        parent_row.locator('[col-id="attributes.`Run Name`"] button').first.click(timeout=60_000)
        for name in names:
            page.get_by_role("link", name=name, exact=True).wait_for(timeout=20_000)
        page.screenshot(path=str(tmp_path / "mlflow-ui.png"))

        # The parent's page: its description is the leaderboard.
        page.goto(f"{base}/#/experiments/{experiment['experiment_id']}/runs/{parent_id}")
        page.get_by_role("heading", name=f"Sweep {SWEEP}: val_acc (max) over seeds").wait_for(timeout=60_000)
        page.get_by_role("cell", name="dataset.rotation.train=z, representation.name=raw").wait_for(timeout=20_000)
        # Its leaderboard table sorts in the artifact view: best first as logged, ascending once clicked.
        page.goto(
            f"{base}/#/experiments/{experiment['experiment_id']}/runs/{parent_id}/artifacts/leaderboard_table.json"
        )
        headers = page.get_by_role("columnheader")
        headers.first.wait_for(timeout=60_000)
        logged = [float(v) for v in column_of(page, "val_acc")]
        cells_before = json.dumps(page.get_by_role("cell").all_inner_texts())
        headers.nth(headers.all_inner_texts().index("val_acc")).click()
        changed = (
            "before => JSON.stringify([...document.querySelectorAll('[role=cell]')].map(c => c.innerText)) != before"
        )
        page.wait_for_function(changed, arg=cells_before, timeout=20_000)
        assert [float(v) for v in column_of(page, "val_acc")] == sorted(logged) != logged
        page.screenshot(path=str(tmp_path / "leaderboard-table.png"))


def column_of(page, name: str) -> list[str]:
    """The cells of column `name` of the page's one table, top to bottom."""
    headers = page.get_by_role("columnheader").all_inner_texts()
    cells = page.get_by_role("cell").all_inner_texts()
    return cells[headers.index(name) :: len(headers)]
