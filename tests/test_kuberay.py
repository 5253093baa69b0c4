"""deploy/kuberay/: the RayCluster, its PodMonitor and the nightly CronJob parse and carry what they promise."""

from __future__ import annotations

import itertools
import json
import re

import pytest
import ray
import yaml
from croniter import croniter

from nightly_submission import REPO_ROOT, check_nightly_submission

KUBERAY = REPO_ROOT / "deploy" / "kuberay"
AUTH_SECRET = {"name": "geosweep-ray-auth", "key": "auth_token"}


def load(name: str) -> dict[str, dict]:
    """The manifests of one file, by kind."""
    documents = list(yaml.safe_load_all((KUBERAY / name).read_text()))
    kinds = [doc["kind"] for doc in documents]
    assert len(set(kinds)) == len(kinds), f"{name}: one manifest per kind expected, got {kinds}"
    return {doc["kind"]: doc for doc in documents}


@pytest.fixture(scope="module")
def ray_cluster() -> dict:
    return load("raycluster.yaml")["RayCluster"]


def pod_specs(cluster: dict) -> dict[str, dict]:
    """Pod spec of the head and of each worker group, by group name."""
    specs = {"head": cluster["spec"]["headGroupSpec"]["template"]["spec"]}
    specs.update({g["groupName"]: g["template"]["spec"] for g in cluster["spec"]["workerGroupSpecs"]})
    return specs


def token_from_secret(env: list[dict]) -> bool:
    variables = {e["name"]: e for e in env}
    return (
        variables.get("RAY_AUTH_MODE", {}).get("value") == "token"
        and variables.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef") == AUTH_SECRET
    )


def test_kuberay_version_is_stated_and_the_crd_is_ray_io_v1(ray_cluster):
    lines = (KUBERAY / "raycluster.yaml").read_text().splitlines()
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert re.search(r"KubeRay operator v1\.\d+", header)
    assert ray_cluster["apiVersion"] == "ray.io/v1"
    assert ray_cluster["spec"]["rayVersion"] == ray.__version__


def test_every_ray_pod_runs_the_pinned_gpu_image_with_resources_shm_and_the_token(ray_cluster):
    service_accounts = {load("raycluster.yaml")["ServiceAccount"]["metadata"]["name"]}
    for group, spec in pod_specs(ray_cluster).items():
        (container,) = spec["containers"]
        assert container["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu", group
        assert container["resources"]["requests"] and container["resources"]["limits"], group
        assert token_from_secret(container["env"]), f"{group}: RAY_AUTH_TOKEN must come from {AUTH_SECRET}"
        assert {"name": "metrics", "containerPort": 8080} in container["ports"], group  # podmonitor.yaml scrapes it
        shm = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm")
        volume = next(v for v in spec["volumes"] if v["name"] == shm)
        assert volume["emptyDir"]["medium"] == "Memory", group
        assert spec["serviceAccountName"] in service_accounts, group
    assert token_from_secret(ray_cluster["spec"]["autoscalerOptions"]["env"])  # the autoscaler talks to the GCS


def test_head_is_reached_by_port_forward_only_and_runs_no_training(ray_cluster):
    head = ray_cluster["spec"]["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert head["rayStartParams"]["num-cpus"] == "0"


def test_gpu_workers_autoscale_from_zero(ray_cluster):
    assert ray_cluster["spec"]["enableInTreeAutoscaling"] is True
    (gpu,) = [g for g in ray_cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu-workers"]
    assert gpu["minReplicas"] == 0 and gpu["replicas"] == 0 and gpu["maxReplicas"] > 0
    (container,) = gpu["template"]["spec"]["containers"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1


def test_trial_drivers_carry_the_custom_resource_that_cluster_yaml_and_the_sweeps_use(ray_cluster):
    (drivers,) = [g for g in ray_cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "trial-drivers"]
    # KubeRay passes rayStartParams.resources to `ray start --resources` as a quoted JSON string.
    resources = json.loads(drivers["rayStartParams"]["resources"].strip('"').replace('\\"', '"'))
    launcher = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())["available_node_types"]["trial_drivers"]
    custom = set(launcher["resources"]) - {"CPU", "GPU", "memory"}
    sweep = yaml.safe_load((REPO_ROOT / "configs" / "sweeps" / "representations.yaml").read_text())
    assert custom and custom == set(resources) >= set(sweep["resources"]["trial_driver_resources"])
    assert drivers["minReplicas"] >= 1
    assert drivers["template"]["spec"]["nodeSelector"]["eks.amazonaws.com/capacityType"] == "ON_DEMAND"


def test_podmonitor_scrapes_the_clusters_pods_on_their_metrics_port(ray_cluster):
    monitor = load("podmonitor.yaml")["PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"] == {"ray.io/cluster": ray_cluster["metadata"]["name"]}
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]


def test_nightly_cronjob_submits_to_the_head_service_with_the_clusters_token(ray_cluster):
    cronjob = load("nightly-cronjob.yaml")["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert croniter.is_valid(cronjob["spec"]["schedule"])
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"rayproject/ray:{ray.__version__}-py311"
    assert token_from_secret(container["env"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    name, namespace = ray_cluster["metadata"]["name"], ray_cluster["metadata"]["namespace"]
    assert env["RAY_ADDRESS"] == f"http://{name}-head-svc.{namespace}.svc.cluster.local:8265"
    assert cronjob["metadata"]["namespace"] == namespace

    (script,) = container["args"]
    words = check_nightly_submission(script)
    assert words[words.index("--address") + 1] == "$RAY_ADDRESS"
    runtime_env = words[words.index("--runtime-env-json") + 1]
    assert "--pip" in runtime_env  # the images hold Ray only: the job brings geosweep's dependencies
