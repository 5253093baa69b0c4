"""cluster.yaml is a valid Ray cluster-launcher config and keeps the properties the README promises."""

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_validates_against_rays_own_schema():
    config = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)

    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert any("--shm-size" in option for option in config["docker"]["run_options"])
    nodes = config["available_node_types"]
    assert nodes[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert nodes["gpu_workers"]["min_workers"] == 0
    assert "trial_driver" in nodes["trial_drivers"]["resources"]
    assert "InstanceMarketOptions" not in nodes["trial_drivers"]["node_config"]  # drivers are not spot
    for worker_type in ("trial_drivers", "gpu_workers"):  # shared s3:// storage_path: workers need S3 access
        assert "IamInstanceProfile" in nodes[worker_type]["node_config"], worker_type
    head_start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    ports = [p["FromPort"] for p in config["provider"]["security_group"]["IpPermissions"]]
    assert ports == [22], "only SSH may be open; the dashboard is reached through `ray dashboard`"
