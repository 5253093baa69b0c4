"""Faults during one sweep: a Train worker killed, a trial driver killed, the MLflow server down; what survives.

One sweep of 2-worker DDP trials on a local Ray, tracked by a real `mlflow server`.
While it runs, a second thread SIGKILLs a random Ray Train worker, then a random
trial driver (Tune's trial process), then stops the MLflow server for a while and
starts it again on the same port and store. Only processes this Ray session
started are ever killed. Afterwards every trial's MLflow run is read back.

    python -m geosweep.bench.fault_injection [--trials 4] [--epochs 10] [--outage-s 15]

Prints the faults with their times, then: trials completed, epochs lost (goal 0:
an epoch a trial trained that MLflow lacks) and epochs logged twice (goal 0).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import psutil
from mlflow.tracking import MlflowClient

from geosweep.localhost import free_port
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.run import run_sweep, trial_runs
from geosweep.tracking.server import local_server

LEARNING_RATES = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]


def sweep_config(workdir: Path, uri: str, trials: int, epochs: int) -> SweepConfig:
    """`trials` configurations (learning rates) of 2-worker DDP training on shapes, retried after failures."""
    base = {
        "dataset": {
            "name": "shapes",
            "kwargs": {"num_points": 256, "train_per_class": 32, "val_per_class": 8, "test_per_class": 4},
            "rotation": {"train": "z", "test": "so3"},
        },
        "representation": {"name": "raw"},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [32, 64], "head_widths": [32], "dropout": 0.0}},
        "epochs": epochs,
        "batch_size": 16,
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.45},  # two trials at a time on 2 CPUs
        "failure": {"max_failures": 3},
        "cache": {"dir": str(workdir / "repr-cache")},
        "certify": {"samples": 2, "max_clouds": 16},
        "tracking": {"experiment": "faults", "tracking_uri": uri},
    }
    return SweepConfig.model_validate(
        {
            "name": "faults",
            "base": base,
            "storage_path": str(workdir / "ray"),
            "space": {"optimizer.lr": {"grid": LEARNING_RATES[:trials]}},
            "progress_interval_s": 600,
        }
    )


def our_processes(title: str) -> list[psutil.Process]:
    """Live processes of this Ray session (descendants of this process) whose title contains `title`."""
    found = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if title in " ".join(process.cmdline()):
                found.append(process)
    return found


def epochs_logged(store: MlflowClient) -> int:
    """The most epochs any trial run holds so far (read from the server's store directly)."""
    experiment = store.get_experiment_by_name("faults")
    runs = store.search_runs([experiment.experiment_id], "tags.`sweep.trial_id` != ''") if experiment else []
    return max((len(store.get_metric_history(run.info.run_id, "train_loss")) for run in runs), default=0)


def inject(store: MlflowClient, server: contextlib.ExitStack, restart, outage_s: float, log: list[str]) -> None:
    """The faults, in turn, each once training is under way; each is written to `log` with its time."""
    began, rng = time.monotonic(), random.Random(0)

    def kill(title: str, what: str) -> None:
        deadline = time.monotonic() + 60
        while not (victims := our_processes(title)):
            if time.monotonic() > deadline:  # the sweep ended first
                log.append(f"{time.monotonic() - began:6.1f} s  found no {what} to kill")
                return
            time.sleep(0.2)
        victim = rng.choice(victims)
        victim.send_signal(signal.SIGKILL)
        log.append(f"{time.monotonic() - began:6.1f} s  killed {what} (pid {victim.pid})")

    while epochs_logged(store) < 2:
        time.sleep(0.5)
    kill("RayTrainWorker", "a Ray Train worker")
    time.sleep(5)
    kill("ImplicitFunc", "a trial driver")
    time.sleep(5)
    server.close()
    training = len(our_processes("RayTrainWorker"))
    log.append(f"{time.monotonic() - began:6.1f} s  stopped the MLflow server ({training} Train workers running)")
    time.sleep(outage_s)
    restart()
    log.append(f"{time.monotonic() - began:6.1f} s  started the MLflow server again")


def main() -> None:
    """The command line: one sweep under faults, then what MLflow holds of it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=4, choices=range(1, len(LEARNING_RATES) + 1))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--outage-s", type=float, default=15.0, help="how long the MLflow server stays down")
    args = parser.parse_args()
    log: list[str] = []
    completed, lost, twice = sweep_under_faults(args.trials, args.epochs, args.outage_s, log)
    print("\n".join(["faults:", *log]))
    print(f"trials completed: {completed} of {args.trials}")
    print(f"epochs lost: {lost} (goal 0)")
    print(f"epochs logged twice: {twice} (goal 0)")


def sweep_under_faults(trials: int, epochs: int, outage_s: float, log: list[str]) -> tuple[int, int, int]:
    """Run the sweep while `inject` strikes; returns (trials completed, epochs lost, epochs logged twice)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as server:
        workdir, port = Path(tmp), free_port()
        store_uri = f"sqlite:///{workdir / 'server.db'}"

        def restart() -> None:
            server.enter_context(local_server(workdir, store_uri, port=port))

        restart()
        store = MlflowClient(store_uri)
        injector = threading.Thread(target=inject, args=(store, server, restart, outage_s, log), daemon=True)
        injector.start()
        results, _ = run_sweep(sweep_config(workdir, f"http://127.0.0.1:{port}", trials, epochs))
        injector.join()
        parent = store.search_runs(
            [store.get_experiment_by_name("faults").experiment_id], "tags.`sweep.parent` = 'true'", max_results=1
        )[0]
        lost = twice = 0
        for run in trial_runs(store, parent.info.run_id):
            steps = [m.step for m in store.get_metric_history(run.info.run_id, "train_loss")]
            lost += epochs - len(set(steps))
            twice += len(steps) - len(set(steps))
        return sum(result.error is None for result in results), lost, twice


if __name__ == "__main__":
    main()
