"""deploy/kuberay/: the RayCluster, its PodMonitor and the nightly CronJob parse and carry what they promise."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import ray
import yaml
from croniter import croniter
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

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


def test_every_ray_pod_runs_the_pinned_image_with_resources_shm_and_the_token(ray_cluster):
    service_accounts = {load("serviceaccount.yaml")["ServiceAccount"]["metadata"]["name"]}
    for group, spec in pod_specs(ray_cluster).items():
        (container,) = spec["containers"]
        flavour = "gpu" if group == "gpu-workers" else "cpu"  # only the GPU workers run CUDA
        assert container["image"] == f"rayproject/ray:{ray.__version__}-py311-{flavour}", group
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


def env_value(container: dict, name: str) -> str:
    (value,) = [e["value"] for e in container["env"] if e["name"] == name]
    return value


def mounted_file(spec: dict, container: dict, path: str) -> tuple[str, str]:
    """(ConfigMap name, key) of the ConfigMap file that `container` sees, read-only, at `path`."""
    path = PurePosixPath(path)
    (mount,) = [m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) in path.parents]
    assert mount.get("readOnly") is True and "subPath" not in mount  # a subPath mount never sees an update
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    relative = str(path.relative_to(mount["mountPath"]))
    keys = {item["path"]: item["key"] for item in volume["configMap"].get("items", [])}
    return volume["configMap"]["name"], keys.get(relative, relative)


def test_kustomization_applies_the_manifests_and_ships_raycluster_yaml_to_the_head(ray_cluster):
    kustomization = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
    assert all((KUBERAY / name).is_file() for name in kustomization["resources"])
    # Every manifest here is applied by `kubectl apply -k`, except the CronJob: one of three nightly schedulers.
    manifests = {p.name for p in KUBERAY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"nightly-cronjob.yaml"}
    (generator,) = kustomization["configMapGenerator"]
    assert generator["files"] == ["raycluster.yaml"]
    assert generator["namespace"] == ray_cluster["metadata"]["namespace"]
    # Kustomize does not rename references inside a RayCluster: the name must stay as written.
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True

    head = pod_specs(ray_cluster)["head"]
    (container,) = head["containers"]
    path = env_value(container, "GEOSWEEP_AUTOSCALING_CONFIG")
    assert mounted_file(head, container, path) == (generator["name"], "raycluster.yaml")


def test_admission_reads_the_full_scale_node_types_from_the_mounted_manifest():
    # What geosweep reads on the head: one YAML document, through Ray's own KubeRay translation.
    autoscaling = _derive_autoscaling_config_from_ray_cr(yaml.safe_load((KUBERAY / "raycluster.yaml").read_text()))
    types = autoscaling["available_node_types"]
    assert types["gpu-workers"]["resources"]["GPU"] == 4 and types["gpu-workers"]["max_workers"] == 12
    assert types["gpu-workers"]["min_workers"] == 0  # admission must not need the GPU pods to exist
    assert types["trial-drivers"]["resources"]["trial_driver"] == 100
    assert types["headgroup"]["resources"]["CPU"] == 0


def test_gpu_workers_cache_datasets_on_a_pod_volume(ray_cluster):
    spec = pod_specs(ray_cluster)["gpu-workers"]
    (container,) = spec["containers"]
    cache = env_value(container, "GEOSWEEP_DATA_CACHE_DIR")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == cache]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert "medium" not in volume["emptyDir"]  # on the node's disk: a memory-backed cache would eat the pod's RAM
    assert volume["emptyDir"]["sizeLimit"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")
def test_kubectl_kustomize_builds_the_configmap_from_the_file_as_written():
    built = subprocess.run(["kubectl", "kustomize", str(KUBERAY)], capture_output=True, text=True, check=True)
    documents = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(built.stdout)}
    configmap = documents[("ConfigMap", "geosweep-raycluster")]
    assert configmap["data"] == {"raycluster.yaml": (KUBERAY / "raycluster.yaml").read_text()}
    head = documents[("RayCluster", "geosweep")]["spec"]["headGroupSpec"]["template"]["spec"]
    assert [v["configMap"]["name"] for v in head["volumes"] if "configMap" in v] == ["geosweep-raycluster"]
    assert ("ServiceAccount", "geosweep-ray") in documents and ("PodMonitor", "geosweep-ray") in documents


def test_only_the_clusters_pods_the_nightly_the_operator_and_prometheus_reach_the_head(ray_cluster):
    policy = load("networkpolicy.yaml")["NetworkPolicy"]
    name, namespace = ray_cluster["metadata"]["name"], ray_cluster["metadata"]["namespace"]
    assert policy["metadata"]["namespace"] == namespace and policy["spec"]["policyTypes"] == ["Ingress"]
    # KubeRay labels the head pod so.
    assert policy["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": name, "ray.io/node-type": "head"}
    rules = policy["spec"]["ingress"]
    assert all(rule.get("from") for rule in rules)  # no rule admits every source
    every_port = [rule for rule in rules if not rule.get("ports")]
    assert [rule["from"] for rule in every_port] == [[{"podSelector": {"matchLabels": {"ray.io/cluster": name}}}]]
    ports = {port["port"] for rule in rules for port in rule.get("ports", [])}
    assert ports == {8265, 8080}  # the Jobs API and metrics; GCS (6379) and the Ray client (10001) stay inside
    nightly = load("nightly-cronjob.yaml")["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    (jobs_api,) = [rule for rule in rules if {"port": 8265, "protocol": "TCP"} in rule.get("ports", [])]
    assert {"podSelector": {"matchLabels": nightly["labels"]}} in jobs_api["from"]
