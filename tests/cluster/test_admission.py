"""Admission counts trials against what the cluster scales to: GPUs and custom resources included, PACK first."""

from pathlib import Path

import pytest
import yaml

from geosweep.cluster.admission import TrialDemand, admit, concurrent_trials
from geosweep.cluster.shape import ClusterShape, NodeType, shape_from_autoscaler_config
from geosweep.config import ConfigError, ScalingSpec
from geosweep.sweep.config import SweepConfig, load_sweep_config
from geosweep.sweep.run import trains_in_trial, trial_demand, trial_resources

REPO_ROOT = Path(__file__).resolve().parents[2]


def shape(*types: tuple[str, dict, int], autoscaling: bool = True) -> ClusterShape:
    return ClusterShape(tuple(NodeType(name, res, count) for name, res, count in types), "test", autoscaling)


def gpu_trial(num_workers: int = 2, strategy: str = "PACK") -> TrialDemand:
    return TrialDemand({"CPU": 4, "GPU": 1}, num_workers, strategy, {"CPU": 0.05, "trial_driver": 0.01})


DRIVERS = ("trial_drivers", {"CPU": 8, "trial_driver": 100}, 2)


def test_the_shipped_study_is_admitted_on_cluster_yaml_with_its_gpu_nodes_at_zero():
    cluster = shape_from_autoscaler_config(yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text()), "cluster.yaml")
    assert cluster.autoscaling and cluster.multi_node
    gpus = sum(t.resources.get("GPU", 0) * t.max_count for t in cluster.node_types)
    for name in ("representations.yaml", "tsp.yaml"):
        study = load_sweep_config(REPO_ROOT / "configs" / "sweeps" / name)
        workers = study.base.scaling.num_workers
        # GPUs bound it, not the CPUs of the driver nodes (which alone would admit hundreds of drivers)
        assert admit(trial_demand(study), cluster, name) == gpus // workers == 24


def test_the_kuberay_cluster_admits_the_study_the_same_way():
    documents = yaml.safe_load_all((REPO_ROOT / "deploy" / "kuberay" / "raycluster.yaml").read_text())
    ray_cluster = next(doc for doc in documents if doc["kind"] == "RayCluster")
    cluster = shape_from_autoscaler_config(ray_cluster, "raycluster.yaml")  # through Ray's own KubeRay translation
    by_name = {t.name: t for t in cluster.node_types}
    assert by_name["gpu-workers"].resources["GPU"] == 4 and by_name["gpu-workers"].max_count == 12
    assert by_name["trial-drivers"].resources["trial_driver"] == 100
    study = load_sweep_config(REPO_ROOT / "configs" / "sweeps" / "representations.yaml")
    assert admit(trial_demand(study), cluster, "representations") == 24


def test_concurrency_is_bounded_by_accelerators_not_cpus():
    many_cpus = shape(DRIVERS, ("gpu", {"CPU": 96, "GPU": 4}, 3))
    assert concurrent_trials(gpu_trial(), many_cpus) == 6  # 12 GPUs / 2 per trial; CPUs alone would allow 36


def test_pack_keeps_a_trial_on_one_node_when_one_node_can_hold_it_and_spreads_when_it_must():
    mixed = shape(DRIVERS, ("four_gpus", {"CPU": 16, "GPU": 4}, 1), ("one_gpu", {"CPU": 16, "GPU": 1}, 2))
    assert concurrent_trials(gpu_trial(strategy="STRICT_PACK"), mixed) == 2  # both on the 4-GPU node
    assert concurrent_trials(gpu_trial(strategy="PACK"), mixed) == 3  # then one across the two 1-GPU nodes
    assert (
        concurrent_trials(gpu_trial(strategy="STRICT_SPREAD"), shape(DRIVERS, ("four_gpus", {"CPU": 16, "GPU": 4}, 1)))
        == 0
    )


def test_custom_accelerator_resources_count_per_worker():
    scaling = ScalingSpec(num_workers=2, cpus_per_worker=0.1, resources_per_worker={"accelerator": 1})
    demand = TrialDemand.of(scaling, driver={"CPU": 0.05})
    assert demand.worker == {"CPU": 0.1, "accelerator": 1}
    assert concurrent_trials(demand, shape(("head", {"CPU": 1}, 1), ("accel", {"CPU": 2, "accelerator": 2}, 3))) == 3


def test_a_trial_that_never_fits_names_the_short_resource_and_the_node_types():
    no_gpus = shape(("head", {"CPU": 0.0}, 1), DRIVERS, autoscaling=False)
    expected = (
        r"study: a trial needs 2 workers x \{CPU: 4, GPU: 1\}"
        r".*GPU is short: a worker needs 1 and the largest node type offers 0"
    )
    with pytest.raises(ConfigError, match=expected + r".*trial_drivers x2"):
        admit(gpu_trial(), no_gpus, "study")
    with pytest.raises(ConfigError, match=r"trial_driver is short: a driver needs 0.01"):
        admit(gpu_trial(), shape(("gpu", {"CPU": 48, "GPU": 4}, 4)), "study")
    with pytest.raises(ConfigError, match=r"STRICT_PACK puts all 8 workers on one node"):
        admit(gpu_trial(8, "STRICT_PACK"), shape(DRIVERS, ("gpu", {"CPU": 48, "GPU": 4}, 4)), "study")
    with pytest.raises(ConfigError, match=r"GPU is short: a trial needs 8 and the cluster scales to 4"):
        admit(gpu_trial(8), shape(DRIVERS, ("gpu", {"CPU": 48, "GPU": 4}, 1)), "study")


def test_a_laptop_admits_what_its_cpus_hold(tiny_config):
    study = SweepConfig.model_validate({"name": "t", "base": tiny_config})  # 2 workers x 0.5 CPU + 0.05 for the driver
    assert concurrent_trials(trial_demand(study), shape(("laptop", {"CPU": 2}, 1), autoscaling=False)) == 1
    assert concurrent_trials(trial_demand(study), shape(("laptop", {"CPU": 8}, 1), autoscaling=False)) == 7
    with pytest.raises(ConfigError, match=r"CPU is short: a trial needs 1.05 and the cluster scales to 1"):
        admit(trial_demand(study), shape(("laptop", {"CPU": 1}, 1), autoscaling=False), "t")


def test_a_one_worker_cpu_trial_holds_only_its_worker(tiny_config):
    # It trains in its Tune trial's own process: no driver sliver beside the worker (sweep.run.trains_in_trial).
    tiny_config["scaling"] = {"num_workers": 1, "cpus_per_worker": 0.9}
    study = SweepConfig.model_validate({"name": "t", "base": tiny_config})
    assert trains_in_trial(study) and trial_resources(study) == {"CPU": 0.9}
    assert concurrent_trials(trial_demand(study), shape(("laptop", {"CPU": 2}, 1), autoscaling=False)) == 2
    on_train = SweepConfig.model_validate(
        {"name": "t", "base": tiny_config, "resources": {"one_worker_in_trial": False}}
    )
    assert not trains_in_trial(on_train) and trial_resources(on_train) == {"CPU": 0.05}
    with_gpu = SweepConfig.model_validate(
        {"name": "t", "base": {**tiny_config, "scaling": {"num_workers": 1, "use_gpu": True}}}
    )
    assert not trains_in_trial(with_gpu)  # a GPU trial keeps Ray Train (nccl, Train's device placement)
