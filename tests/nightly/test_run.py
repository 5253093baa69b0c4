"""Real nights of the smoke suite on a local Ray into a temp MLflow store: baseline, regression, failure, recovery."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient

from geosweep.nightly.run import run_nightly
from geosweep.nightly.suite import load_suite

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE = REPO_ROOT / "configs" / "nightly" / "smoke.yaml"
ENTRIES = {
    "platform_overhead",
    "representation_throughput",
    "shapes-pointnet-raw-none",
    "shapes-pointnet-tinv_mds-none",
}
INJECTED_REGRESSION = "run_overrides.optimizer.lr=1e-6"  # the seeded initial weights barely move: near-chance accuracy


def nights(uri: str) -> tuple[MlflowClient, dict[str, object], dict[str, list]]:
    """The nightly experiment's parent runs by date, and each night's child runs."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("nightly")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    parents = {run.data.tags["nightly.date"]: run for run in runs if run.data.tags.get("nightly.parent") == "true"}
    children = {
        date: [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        for date, parent in parents.items()
    }
    return client, parents, children


def section(report: str, title: str) -> str:
    """The text of one `## title` section of a markdown report."""
    return report.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].strip()


def test_a_night_records_its_baseline_then_catches_an_injected_regression(ray_local, mlflow_uri, tmp_path):
    """The default-run check, in this process on the session's Ray: one training run and one cheap figure."""
    overrides = [
        f"storage_path={tmp_path / 'ray'}",
        f"run_overrides.cache.dir={tmp_path / 'cache'}",
        "select=[representation_throughput, shapes-pointnet-tinv_mds-none]",
    ]

    first = io.StringIO()
    assert run_nightly(load_suite(SMOKE, overrides), "2025-01-01", first) == 0
    assert "2025-01-01: PASSED" in first.getvalue() and section(first.getvalue(), "Regressions") == "None."
    assert "| new |" in first.getvalue()  # no history: tonight starts the baseline

    second = io.StringIO()
    assert run_nightly(load_suite(SMOKE, [*overrides, INJECTED_REGRESSION]), "2025-01-02", second) == 1
    regressions = section(second.getvalue(), "Regressions")
    assert "| `shapes-pointnet-tinv_mds-none` | `val_acc (higher is better)` | " in regressions
    assert "**regressed**" in regressions and "representation_throughput" not in regressions

    client, parents, children = nights(mlflow_uri)
    assert {date: run.data.tags["nightly.status"] for date, run in parents.items()} == {
        "2025-01-01": "passed",
        "2025-01-02": "regressed",
    }
    parent = parents["2025-01-02"]
    for key in ("git.sha", "git.dirty", "hardware.cpu", "hardware.cpu_cores", "nightly.suite"):
        assert parent.data.tags[key], key
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "nightly_report.md",
        "nightly_report.html",
        "suite.yaml",
    }
    html = Path(client.download_artifacts(parent.info.run_id, "nightly_report.html")).read_text()
    assert "<td>val_acc (higher is better)</td>" in html and "<td class='regressed'>regressed</td>" in html
    kids = children["2025-01-02"]
    assert {kid.data.tags["nightly.entry"] for kid in kids} == {
        "representation_throughput",
        "shapes-pointnet-tinv_mds-none",
    }
    assert all(kid.info.status == "FINISHED" and kid.data.tags["nightly.date"] == "2025-01-02" for kid in kids)


@pytest.mark.slow
def test_the_smoke_suite_twice_then_a_regression_and_a_failed_entry_then_a_clean_night(mlflow_uri, tmp_path):
    """jobs/nightly.py as the scheduler runs it, four nights of the whole smoke suite (performance figures included)."""
    if ray.is_initialized():
        ray.shutdown()  # each night starts its own Ray: never two on the machine
    env = {**os.environ, "GEOSWEEP_CACHE_DIR": str(tmp_path / "cache")}

    def night(date: str, *overrides: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "jobs/nightly.py", "--config", str(SMOKE), "--date", date]
        for item in (f"storage_path={tmp_path / 'ray'}", *overrides):
            command += ["--set", item]
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert f"# Nightly `nightly-smoke`, {date}" in done.stdout, done.stdout[-3000:] + done.stderr[-5000:]
        return done

    first = night("2025-01-01")
    assert first.returncode == 0 and "| new |" in first.stdout and "| ok |" not in first.stdout
    second = night("2025-01-02")
    assert second.returncode == 0 and "(1 night)" in second.stdout and "| new |" not in second.stdout

    # An injected regression, and one more entry that fails in its worker (64-point clouds, max_points 16).
    broken = (
        "runs.shapes-broken={config: configs/train/shapes_pointnet_raw.yaml, "
        "overrides: {representation: {name: geodesic_mds, kwargs: {max_points: 16}}}}"
    )
    third = night("2025-01-03", INJECTED_REGRESSION, broken, f"select=[{', '.join(sorted(ENTRIES))}, shapes-broken]")
    assert third.returncode == 1
    assert "- `shapes-broken`: " in section(third.stdout, "Failed entries") and "max_points" in third.stdout
    regressions = section(third.stdout, "Regressions")
    for entry in ("shapes-pointnet-raw-none", "shapes-pointnet-tinv_mds-none"):
        assert f"| `{entry}` | `val_acc (higher is better)` | " in regressions, regressions

    fourth = night("2025-01-04")
    assert fourth.returncode == 0 and "2025-01-04: PASSED" in fourth.stdout
    assert "(2 nights)" in fourth.stdout and "(3 nights)" not in fourth.stdout  # the regressed night is no baseline

    client, parents, children = nights(mlflow_uri)
    assert [parents[date].data.tags["nightly.status"] for date in sorted(parents)] == [
        "passed",
        "passed",
        "regressed",
        "passed",
    ]
    for date, kids in children.items():
        assert {kid.data.tags["nightly.entry"] for kid in kids} == ENTRIES | (
            {"shapes-broken"} if date == "2025-01-03" else set()
        )
        unfinished = {kid.data.tags["nightly.entry"]: kid.info.status for kid in kids if kid.info.status != "FINISHED"}
        assert unfinished == ({"shapes-broken": "FAILED"} if date == "2025-01-03" else {}), date
    # The failed run keeps what it recorded; the traceback is on the night's parent run.
    parent = parents["2025-01-03"].info.run_id
    assert "max_points" in Path(client.download_artifacts(parent, "errors/shapes-broken.txt")).read_text()
