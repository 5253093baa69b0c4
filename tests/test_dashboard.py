"""The Grafana dashboard charts only series that geosweep really exports, and file provisioning finds it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import promql_parser
import pytest
import yaml

from geosweep.train.live_metrics import prometheus_series

REPO_ROOT = Path(__file__).resolve().parents[1]
GRAFANA = REPO_ROOT / "dashboards" / "grafana"
# The series a panel must show: samples/s, step seconds, loss, epoch progress, GPU memory.
CHARTED = {
    "ray_geosweep_samples_per_second",
    "ray_geosweep_step_seconds_bucket",
    "ray_geosweep_train_loss",
    "ray_geosweep_epoch",
    "ray_geosweep_gpu_max_memory_allocated_bytes",
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((GRAFANA / "geosweep.json").read_text())


def queries(dashboard: dict) -> list[str]:
    """Every PromQL expression: the panels' targets and the selectors inside label_values(...) variables."""
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            (selector,) = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"]).groups()
            exprs.append(selector)
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, Grafana's interval variables given a value first."""
    ast = promql_parser.parse(re.sub(r"\$__(rate_)?interval", "1m", expr))
    names: set[str] = set()
    promql_parser.walk(
        ast, pre_visit=lambda n: names.add(n.name) if isinstance(n, promql_parser.VectorSelector) else None
    )
    return names


def test_every_promql_expression_names_an_exported_series(dashboard):
    exported = prometheus_series()
    used: set[str] = set()
    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} names {sorted(names - exported)}, which geosweep does not export"
        used |= names
    assert used >= CHARTED, f"no panel for {sorted(CHARTED - used)}"


def test_panels_use_the_datasource_variable(dashboard):
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for item in [*dashboard["panels"], *(t for p in dashboard["panels"] for t in p["targets"])]:
        assert item["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, item.get("title", item)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


def test_file_provisioning_points_at_the_dashboards_folder():
    provisioning = GRAFANA / "provisioning"
    text = (provisioning / "dashboards" / "geosweep.yaml").read_text()
    (provider,) = yaml.safe_load(text)["providers"]
    assert provider["type"] == "file"

    # The header's `docker run` mounts repository folders into Grafana: follow them back.
    header = [line.removeprefix("#").strip() for line in text.splitlines() if line.startswith("#")]
    start = next(i for i, line in enumerate(header) if line.startswith("docker run"))
    end = next(i for i in range(start, len(header)) if not header[i].endswith("\\"))
    command = " ".join(line.removesuffix("\\") for line in header[start : end + 1])
    volumes = [w for w in shlex.split(command) if w.startswith("$PWD/")]
    mounts = {dst: REPO_ROOT / src.removeprefix("$PWD/") for src, dst, *_ in (v.split(":") for v in volumes)}
    assert mounts["/etc/grafana/provisioning"] == provisioning
    assert (mounts[provider["options"]["path"]] / "geosweep.json").is_file()

    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"


def test_prometheus_on_the_head_listens_on_loopback_without_its_lifecycle_api():
    script = (Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "start-on-head.sh").read_text()
    command = script[script.index("nohup prometheus") :]
    assert "--web.listen-address=127.0.0.1:9090" in command
    assert "--web.enable-lifecycle" not in command.split("echo")[0] and "0.0.0.0" not in script
    assert "/tmp/ray/session_latest/metrics/prometheus/prometheus.yml" in command  # Ray's service discovery
