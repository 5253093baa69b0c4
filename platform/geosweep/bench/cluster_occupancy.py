"""Accelerator occupancy of a sweep on an autoscaling cluster, simulated on this machine.

    python -m geosweep.bench.cluster_occupancy [--accelerators 2 4] [--waves 2] [--epochs 12]

For each M, Ray's fake_multinode cluster (head with no CPUs, one trial-driver node,
nodes of 2 stand-in `accelerator`s each, from zero up to M accelerators, idle nodes kept
as long as cluster.yaml's `idle_timeout_minutes`) runs a
sweep of K = waves x M one-worker trials, submitted with `ray job submit`, and reports:
- occupancy: accelerator-seconds held by Train workers (the autoscaler's usage, sampled
  every second) / (M x sweep wall), the sweep wall running from the first trial's admission
  to the last trial's end (scale-up from zero included);
- compute occupancy: the same with only the trials' training phases counted as busy;
- admission to first epoch: from a trial's MLflow run creation (its driver starting) to
  its first logged epoch, median over trials: what a trial waits while it holds a slot.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from geosweep.cluster.fake import FakeCluster
from geosweep.tracking.server import local_server

REPO_ROOT = Path(__file__).resolve().parents[3]
EXPERIMENT = "occupancy"


def sweep_file(workdir: Path, trials: int, epochs: int, train_per_class: int) -> Path:
    """The quickstart's base on stand-in accelerators: one worker per trial, `trials` learning rates."""
    base = yaml.safe_load((REPO_ROOT / "configs" / "train" / "shapes_pointnet_tinv.yaml").read_text())
    base["dataset"]["kwargs"].update({"train_per_class": train_per_class})
    base |= {
        "epochs": epochs,
        "scaling": {"num_workers": 1, "cpus_per_worker": 0.1, "resources_per_worker": {"accelerator": 1}},
        "tracking": {"experiment": EXPERIMENT},
        "cache": {"dir": str(workdir / "repr-cache")},
    }
    sweep = {
        "name": "occupancy",
        "base": base,
        "space": {"optimizer.lr": {"grid": [1e-3 * (1 + i / trials) for i in range(trials)]}},
        # The accelerator stands in for a GPU: a GPU trial stays on Ray Train, its driver on the driver node.
        "resources": {"trial_driver_resources": {"trial_driver": 0.01}, "one_worker_in_trial": False},
        "storage_path": (workdir / "shared").as_uri(),
        "progress_interval_s": 60,
    }
    path = workdir / "occupancy.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def shipped_idle_timeout_minutes() -> float:
    """How long cluster.yaml keeps an idle worker node: a node freed between waves waits for the next trial."""
    return float(yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())["idle_timeout_minutes"])


def measure(accelerators: int, waves: int, epochs: int, train_per_class: int) -> dict[str, float]:
    """Run the sweep on a fake cluster that scales to `accelerators`; the figures of `figures`."""
    nodes = accelerators // 2
    shape = {
        "trial_drivers": {"resources": {"CPU": 1, "trial_driver": 100}, "min_workers": 1, "max_workers": 1},
        "accelerator_workers": {"resources": {"CPU": 1, "accelerator": 2}, "min_workers": 0, "max_workers": nodes},
    }
    with tempfile.TemporaryDirectory(prefix="gs-occupancy-") as tmp:
        workdir = Path(tmp)
        config = sweep_file(workdir, waves * accelerators, epochs, train_per_class)
        runtime_env = workdir / "runtime_env.yaml"
        idle_timeout = shipped_idle_timeout_minutes()
        with local_server(workdir) as uri, FakeCluster(shape, idle_timeout_minutes=idle_timeout) as cluster:
            runtime_env.write_text(yaml.safe_dump({"env_vars": {"MLFLOW_TRACKING_URI": uri}}))
            sampler = UsageSampler(cluster)
            sampler.start()
            job = ["python", "jobs/sweep.py", "--config", str(config)]
            done = cluster.submit(
                job, working_dir=REPO_ROOT, runtime_env=runtime_env, submission_id=f"occupancy-{accelerators}"
            )
            sampler.stopping.set()
            sampler.join()
            if done.returncode != 0:
                log = Path(tempfile.gettempdir()) / f"cluster_occupancy-{accelerators}.log"
                log.write_text(done.stdout + done.stderr)
                raise RuntimeError(f"the sweep failed (its job's whole log: {log}):\n{done.stdout[-3000:]}")
            return figures(MlflowClient(uri), sampler.samples, accelerators)


class UsageSampler(threading.Thread):
    """(time, accelerators in use) once a second while the sweep runs."""

    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.stopping, self.samples = cluster, threading.Event(), []

    def run(self) -> None:
        """Sample until `stopping` is set; a sample the dashboard cannot give yet is skipped."""
        while not self.stopping.wait(1.0):
            with contextlib.suppress(OSError, KeyError):
                self.samples.append((time.time(), self.cluster.usage().get("accelerator", (0.0, 0.0))[0]))


def figures(client: MlflowClient, samples: list[tuple[float, float]], accelerators: int) -> dict[str, float]:
    """The module docstring's figures, from the trials' MLflow runs and the accelerator usage samples."""
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    trials = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" in r.data.tags]
    begin = min(r.info.start_time for r in trials) / 1000
    end = max(r.info.end_time for r in trials) / 1000
    inside = [(t, used) for t, used in samples if begin <= t <= end]
    held = sum(used * (t1 - t0) for (t0, used), (t1, _) in itertools.pairwise(inside))  # accelerators in use x seconds
    compute, waits = 0.0, []
    for run in trials:
        history = client.get_metric_history(run.info.run_id, "epoch_seconds")
        compute += sum(m.value for m in history)
        first = min(m.timestamp for m in client.get_metric_history(run.info.run_id, "val_acc")) / 1000
        waits.append(first - run.info.start_time / 1000)
    wall = end - begin
    return {
        "trials": len(trials),
        "wall_s": wall,
        "occupancy": held / (accelerators * wall),
        "compute_occupancy": compute / (accelerators * wall),
        "compute_per_trial_s": compute / len(trials),
        "admission_to_first_epoch_s": statistics.median(waits),
    }


def main() -> None:
    """The command line: a table of the figures, one row per M."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accelerators", type=int, nargs="+", default=[2, 4], help="M values (even: 2 per node)")
    parser.add_argument("--waves", type=int, default=2, help="K = waves x M trials")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train-per-class", type=int, default=64, help="shapes per class: sets each epoch's compute")
    args = parser.parse_args()
    print("M  trials  wall s  occupancy  compute occupancy  compute/trial s  admission->first epoch s")
    for m in args.accelerators:
        began = time.time()
        f = measure(m, args.waves, args.epochs, args.train_per_class)
        row = (
            f"{m:<2} {f['trials']:>6} {f['wall_s']:>7.0f} {f['occupancy']:>10.3f} {f['compute_occupancy']:>18.3f} "
            f"{f['compute_per_trial_s']:>16.1f} {f['admission_to_first_epoch_s']:>25.1f}"
        )
        print(f"{row}   ({time.time() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
