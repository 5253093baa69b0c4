"""Two Ray nodes on this machine (ray.cluster_utils.Cluster): a sweep trial's 2 DDP workers run on different nodes."""

from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from geosweep.localhost import free_port
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.run import run_sweep
from geosweep.train.checkpoint import load_state

# Slow: 50 s on 2 quiet cores, 2.5 min on busy ones (two raylets, a dashboard, a worker group across nodes).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def two_nodes():
    """A head and a worker node of 1 CPU each, on loopback; this process is the cluster's driver."""
    if ray.is_initialized():
        ray.shutdown()  # never two Ray instances on the machine; the next ray_local user starts a fresh one
    head = {"num_cpus": 1, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": free_port()}
    cluster = Cluster(initialize_head=True, head_node_args=head)  # the dashboard: Train V2's clean-up queries it
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()  # stops this cluster's own processes only


def test_a_trial_spreads_its_ddp_workers_over_two_nodes_and_checkpoints_to_shared_storage(
    two_nodes, tiny_config, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tiny_config["tracking"]["tracking_uri"] = uri
    tiny_config["scaling"] = {"num_workers": 2, "cpus_per_worker": 0.5, "placement_strategy": "STRICT_SPREAD"}
    shared = tmp_path / "shared"  # both nodes see it; given as file://, as an NFS mount on a real cluster would be
    spec = SweepConfig.model_validate({"name": "spread", "base": tiny_config, "storage_path": shared.as_uri()})

    results, _ = run_sweep(spec)
    assert len(results) == 1 and not results.errors, [str(e) for e in results.errors]
    metrics = results[0].metrics
    assert metrics["epoch"] == tiny_config["epochs"]

    # Ray's state API keeps the (now dead) Train workers with the node each one ran on.
    workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")], detail=True)
    nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(nodes) == 2 and len(workers) == 2
    assert {worker.node_id for worker in workers} == nodes, "the two DDP workers shared a node"

    checkpoint = Path(metrics["checkpoint_path"])
    assert checkpoint.is_relative_to(shared)
    state = load_state(ray.train.Checkpoint(str(checkpoint)))
    assert state["epoch"] == tiny_config["epochs"] and state["model"]
    client = MlflowClient(uri)
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("tests").experiment_id])
        if "sweep.trial_id" in r.data.tags
    ]
    assert run.info.status == "FINISHED" and run.data.tags["world_size"] == "2"
