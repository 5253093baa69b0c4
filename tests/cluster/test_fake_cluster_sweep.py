"""The shipped GPU study, submitted with `ray job submit` to an autoscaling cluster shaped like cluster.yaml.

Ray's fake_multinode provider simulates the cluster on this machine: a head with
no CPUs, an on-demand trial-driver node, and accelerator worker nodes from zero.
There is no CUDA here, so the worker type advertises a stand-in `accelerator`
resource and the study reaches it through `--set` overrides only.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from geosweep.cluster.fake import HEAD_TYPE, FakeCluster
from geosweep.tracking.server import local_server

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = "accelerator_workers"
CLUSTER_SHAPE = {  # cluster.yaml's node types in miniature: drivers on-demand (min 1), accelerators from zero
    "trial_drivers": {"resources": {"CPU": 1, "trial_driver": 100}, "min_workers": 1, "max_workers": 1},
    WORKERS: {"resources": {"CPU": 1, "accelerator": 2}, "min_workers": 0, "max_workers": 2},
}


def study_overrides(tmp_path: Path, tiny_config: dict) -> list[str]:
    """configs/sweeps/representations.yaml at toy size on stand-in accelerators: overrides only."""
    values = {
        "base.dataset": tiny_config["dataset"],
        "base.backbone": tiny_config["backbone"],
        "base.epochs": 2,
        "base.batch_size": 8,
        "base.precision": "fp32",
        # 2 DDP workers x 1 accelerator each: PACK puts both on one 2-accelerator node.
        "base.scaling": {"num_workers": 2, "cpus_per_worker": 0.25, "resources_per_worker": {"accelerator": 1}},
        "base.failure.max_failures": 0,
        "base.cache.dir": str(tmp_path / "repr-cache"),
        "base.certify": tiny_config["certify"],
        "base.tracking.experiment": "cluster",
        "space": {"representation": {"grid": [{"name": "raw"}, {"name": "tinv_mds"}]}},
        "seeds": 1,
        "scheduler": {"name": "fifo"},
        "storage_path": (tmp_path / "shared").as_uri(),  # every node sees it, as an NFS mount would be
    }
    return [
        item
        for path, value in values.items()
        for item in ("--set", f"{path}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    ]


class Watcher(threading.Thread):
    """Polls the cluster while the job runs: node counts by type, and where each Train worker runs."""

    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.stopping = cluster, threading.Event()
        self.counts: list[dict[str, int]] = []
        self.worker_nodes: dict[str, set[str]] = defaultdict(set)  # placement group -> node ids of its workers
        self.node_types: dict[str, str] = {}

    def run(self) -> None:
        while not self.stopping.wait(2):
            try:
                nodes = self.cluster.state("nodes")
                actors = self.cluster.state("actors", class_name="RayTrainWorker")
            except OSError:
                continue
            self.node_types.update({n["node_id"]: self.cluster.node_type_of(n) for n in nodes})
            alive = [self.cluster.node_type_of(n) for n in nodes if n["state"] == "ALIVE"]
            self.counts.append({t: alive.count(t) for t in set(alive)})
            for actor in actors:
                if actor.get("node_id"):
                    self.worker_nodes[actor["placement_group_id"]].add(actor["node_id"])


def test_the_gpu_study_scales_up_from_zero_runs_every_trial_and_scales_back_down(tmp_path, tiny_config):
    if ray.is_initialized():
        ray.shutdown()  # never two Ray instances on the machine
    with local_server(tmp_path) as tracking_uri, FakeCluster(CLUSTER_SHAPE) as cluster:
        assert cluster.node_counts().get(WORKERS, 0) == 0  # accelerator nodes start at zero
        runtime_env = tmp_path / "runtime_env.yaml"
        runtime_env.write_text(yaml.safe_dump({"env_vars": {"MLFLOW_TRACKING_URI": tracking_uri}}))
        watcher = Watcher(cluster)
        watcher.start()
        job = [
            "python",
            "jobs/sweep.py",
            "--config",
            "configs/sweeps/representations.yaml",
            *study_overrides(tmp_path, tiny_config),
        ]
        submit = cluster.submit(job, working_dir=REPO_ROOT, runtime_env=runtime_env, submission_id="study")
        watcher.stopping.set()
        watcher.join()
        logs = submit.stdout[-4000:] + submit.stderr[-2000:]
        assert submit.returncode == 0 and "2 trials, 0 failed" in submit.stdout, logs

        # Scaled up from zero; every DDP worker ran on an accelerator node, a trial's two on one node (PACK).
        assert max(c.get(WORKERS, 0) for c in watcher.counts) >= 1, watcher.counts
        assert len(watcher.worker_nodes) == 2, watcher.worker_nodes
        for nodes in watcher.worker_nodes.values():
            assert len(nodes) == 1 and watcher.node_types[next(iter(nodes))] == WORKERS
        assert all(watcher.node_types[n] != HEAD_TYPE for nodes in watcher.worker_nodes.values() for n in nodes)

        # One parent run and its two children in the tracking server, each epoch logged once.
        client = MlflowClient(tracking_uri)
        runs = client.search_runs([client.get_experiment_by_name("cluster").experiment_id])
        parents = [r for r in runs if r.data.tags.get("sweep.parent") == "true"]
        assert len(parents) == 1
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
        assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
        for child in children:
            assert [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")] == [1, 2]

        # Idle accelerator nodes go away again; the on-demand driver node stays (min_workers 1).
        cluster.wait_for(
            lambda: cluster.node_counts().get(WORKERS, 0) == 0, 180, "idle accelerator nodes to scale down"
        )
        assert cluster.node_counts().get("trial_drivers") == 1


@pytest.mark.slow
def test_the_smoke_nightly_passes_on_the_autoscaling_cluster_with_shared_storage(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    with local_server(tmp_path) as tracking_uri, FakeCluster(CLUSTER_SHAPE) as cluster:
        runtime_env = tmp_path / "runtime_env.yaml"
        runtime_env.write_text(yaml.safe_dump({"env_vars": {"MLFLOW_TRACKING_URI": tracking_uri}}))
        shared = (tmp_path / "shared").as_uri()
        job = ["python", "jobs/nightly.py", "--config", "configs/nightly/smoke.yaml", "--date", "2026-12-01"]
        job += ["--set", f"storage_path={shared}"]  # the suite's s3:// storage, as a shared file:// mount
        done = cluster.submit(job, working_dir=REPO_ROOT, runtime_env=runtime_env, submission_id="nightly-2026-12-01")
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

        client = MlflowClient(tracking_uri)
        runs = client.search_runs([client.get_experiment_by_name("nightly").experiment_id])
        (night,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        entries = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == night.info.run_id]
        assert night.info.status == "FINISHED" and len(entries) == 4
        assert all(r.info.status == "FINISHED" for r in entries)
    assert list((tmp_path / "shared").rglob("checkpoint_*")), (
        "the nightly's training runs kept no checkpoint in shared storage"
    )
