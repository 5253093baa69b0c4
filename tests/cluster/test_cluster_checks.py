"""Where a cluster run writes must outlive it and reach every node; the cluster's shape comes from its autoscaler."""

import json

import pytest

from geosweep.cluster.checks import require_lasting_tracking, require_shared_storage
from geosweep.cluster.shape import AUTOSCALING_CONFIG_ENV, ClusterShape, NodeType, current_shape, shape_from_live_nodes
from geosweep.config import ConfigError

LAPTOP = ClusterShape((NodeType("laptop", {"CPU": 2}, 1),), "test", autoscaling=False)
AUTOSCALING = ClusterShape((NodeType("head", {}, 1), NodeType("gpu", {"GPU": 4}, 12)), "test", autoscaling=True)


def test_head_local_storage_is_refused_on_a_cluster_with_the_field_named():
    require_shared_storage(None, LAPTOP, "storage_path")  # one machine: ~/ray_results is fine
    require_shared_storage("/tmp/results", LAPTOP, "storage_path")
    for shared in ("s3://bucket/sweeps", "gs://bucket/x", "file:///mnt/nfs/results"):
        require_shared_storage(shared, AUTOSCALING, "storage_path")
    with pytest.raises(ConfigError, match=r"storage_path is not set \(Ray's default ~/ray_results is local.*s3://"):
        require_shared_storage(None, AUTOSCALING, "storage_path")
    with pytest.raises(ConfigError, match=r"--storage-path '/home/me/results' is local to the driver's node"):
        require_shared_storage("/home/me/results", AUTOSCALING, "--storage-path")


def test_a_cluster_job_without_a_tracking_server_fails_naming_mlflow_tracking_uri(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    require_lasting_tracking(None, "tracking.tracking_uri", LAPTOP)  # a laptop run: ./mlflow.db is the embedded store
    with pytest.raises(ConfigError, match=r"set MLFLOW_TRACKING_URI .* or tracking.tracking_uri"):
        require_lasting_tracking(None, "tracking.tracking_uri", AUTOSCALING)

    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"metadata": {}}))  # what Ray sets for a job driver
    monkeypatch.chdir(tmp_path)  # the job's working directory
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI"):
        require_lasting_tracking(None, "tracking.tracking_uri", LAPTOP)
    with pytest.raises(ConfigError, match=r"'sqlite:///mlflow.db' points into the job's temporary working directory"):
        require_lasting_tracking("sqlite:///mlflow.db", "tracking.tracking_uri", LAPTOP)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'inside.db'}")
    with pytest.raises(ConfigError, match=r"temporary working directory"):
        require_lasting_tracking(None, "tracking.tracking_uri", LAPTOP)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    require_lasting_tracking(None, "tracking.tracking_uri", AUTOSCALING)
    require_lasting_tracking(
        "sqlite:////srv/nfs/mlflow.db", "tracking.tracking_uri", LAPTOP
    )  # absolute, outside the job


def test_the_shape_comes_from_the_named_autoscaler_config(monkeypatch, tmp_path):
    config = {
        "max_workers": 3,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}, "max_workers": 0},
            "gpu": {"resources": {"CPU": 8, "GPU": 2}, "min_workers": 0, "max_workers": 5},
        },
    }
    path = tmp_path / "autoscaler.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv(AUTOSCALING_CONFIG_ENV, str(path))
    cluster = current_shape()
    assert cluster.autoscaling and cluster.multi_node and str(path) in cluster.source
    assert {(t.name, t.max_count) for t in cluster.node_types} == {("head", 1), ("gpu", 3)}  # capped by max_workers
    assert cluster.node_types[1].resources == {"CPU": 8, "GPU": 2}

    monkeypatch.setenv(AUTOSCALING_CONFIG_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=AUTOSCALING_CONFIG_ENV + r"=.*missing.yaml: no such file"):
        current_shape()
    path.write_text(json.dumps({"head_node_type": "head"}))
    monkeypatch.setenv(AUTOSCALING_CONFIG_ENV, str(path))
    with pytest.raises(
        ConfigError, match=r"autoscaler.json: cannot read the cluster's node types.*available_node_types"
    ):
        current_shape()


def test_live_nodes_are_grouped_by_what_they_offer():
    nodes = [
        {"Alive": True, "Resources": {"CPU": 4.0, "memory": 1e9, "node:127.0.0.1": 1.0}},
        {"Alive": True, "Resources": {"CPU": 4.0, "memory": 2e9, "node:127.0.0.2": 1.0}},
        {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}},
        {"Alive": False, "Resources": {"CPU": 64.0}},
    ]
    cluster = shape_from_live_nodes(nodes)
    assert not cluster.autoscaling and cluster.multi_node
    offers = {tuple(sorted(t.resources.items())): t.max_count for t in cluster.node_types}
    assert offers == {(("CPU", 2.0), ("GPU", 1.0)): 1, (("CPU", 4.0),): 2}
