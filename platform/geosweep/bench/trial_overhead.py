"""Per-trial overhead: one small trial through `geosweep sweep`, as a plain Tune trainable, and as a plain loop.

Side by side in one process and one local Ray, the same config and epochs:
  (a) geosweep: a one-trial sweep (Tune trial process training its one worker, MLflow), its phases read
      from MLflow's own timestamps; the trial itself runs from the sweep's parent run (Tune begins) to the
      end of its own run, the sweep's start and end (parent run, leaderboard) around it;
  (b) plain Tune: a function trainable running the plain loop, reporting each epoch (what Ray itself costs);
  (c) the plain PyTorch loop in this process (the limit).
It prints each one's wall over the plain loop's compute, what importing each process's modules costs, and
when each process of (a) began its part, from Ray's own timeline.

    python -m geosweep.bench.trial_overhead [--epochs 6]

Goal on a 2-core machine: a 1-worker trial's wall <= compute + 8 s.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
from mlflow.tracking import MlflowClient
from ray import tune

from geosweep.bench.plain import train_in_process
from geosweep.config import RunConfig, read_yaml_mapping
from geosweep.ray_local import ensure_ray
from geosweep.sweep.config import SweepConfig
from geosweep.sweep.progress import progress_view
from geosweep.sweep.run import run_sweep

QUICKSTART = Path(__file__).resolve().parents[3] / "configs" / "sweeps" / "quickstart.yaml"
# What each kind of trial process imports: a one-worker trial's process runs sweep.trial and then the loop; a
# Ray Train worker (trials of more workers) the loop. The plain Tune trainable needs neither.
PROCESS_IMPORTS = {"trial process": "geosweep.sweep.trial", "train worker": "geosweep.train.loop"}
# Packages whose first import costs most; a package imported inside another is counted in both.
HEAVY = ("torch", "ray.train.torch", "ray.tune", "mlflow", "scipy", "pandas", "plotly", "optuna")
# Steps of a trial's start-up in Ray's timeline (task events), in the order they happen.
STARTUP_STEPS = {"task::ImplicitFunc.train": "Tune trial process runs the trial"}


def one_trial_sweep(epochs: int, workdir: Path) -> SweepConfig:
    """The quickstart's base config as a sweep of exactly one trial (tinv_mds), tracked in `workdir`."""
    raw = read_yaml_mapping(QUICKSTART)
    raw["base"]["epochs"] = epochs
    raw["base"]["tracking"] = {"experiment": "trial-overhead", "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}"}
    raw["base"]["cache"] = {"dir": str(workdir / "cache")}
    raw |= {"name": "trial-overhead", "space": {"representation": {"grid": [{"name": "tinv_mds"}]}}}
    raw["storage_path"] = str(workdir / "ray")
    return SweepConfig.model_validate(raw)


def geosweep_phases(sweep: SweepConfig) -> dict[str, float]:
    """Run the one-trial sweep; seconds of each phase, from MLflow's timestamps and this process's clock."""
    started = time.time()
    run_sweep(sweep)
    ended = time.time()
    steps = startup_steps(since=started)
    client = MlflowClient(sweep.base.tracking.tracking_uri)
    experiment = client.get_experiment_by_name(sweep.base.tracking.experiment).experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    parent = next(run for run in runs if run.data.tags.get("sweep.parent") == "true")
    (trial,) = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    step0 = max(m.timestamp for m in client.get_metric_history(trial.info.run_id, "repr/seconds")) / 1000
    stamps = sorted(m.timestamp / 1000 for m in client.get_metric_history(trial.info.run_id, "val_acc"))
    train = sum(m.value for m in client.get_metric_history(trial.info.run_id, "epoch_seconds"))
    return {
        "sweep start -> parent run": parent.info.start_time / 1000 - started,
        "parent run -> trial run created (Tune trial actor, imports)": (trial.info.start_time - parent.info.start_time)
        / 1000,
        "trial run -> step 0 (data, representation, first MLflow writes)": step0 - trial.info.start_time / 1000,
        "step 0 -> last epoch (epochs, evaluation, reports, checkpoints)": stamps[-1] - step0,
        f"  of which training phases (sum of {len(stamps)} epoch_seconds)": train,
        "last epoch -> run ended (final metrics, certificate, model, teardown)": trial.info.end_time / 1000
        - stamps[-1],
        "run ended -> sweep returned (leaderboard, parent run)": ended - trial.info.end_time / 1000,
        **{f"  sweep start -> {step} (+{seconds:.1f} s)": begun - started for step, (begun, seconds) in steps.items()},
        "  sweep start -> step 0": step0 - started,
        "wall": ended - started,
        "trial": (trial.info.end_time - parent.info.start_time) / 1000,
    }


def startup_steps(since: float) -> dict[str, tuple[float, float]]:
    """Each STARTUP_STEPS step's first start after `since` and how long it took, from Ray's timeline."""
    first: dict[str, tuple[float, float]] = {}
    for event in ray.timeline():
        step = STARTUP_STEPS.get(event.get("cat", ""))
        begun = event.get("ts", 0) / 1e6
        if step and event.get("ph") == "X" and begun >= since and (step not in first or begun < first[step][0]):
            first[step] = (begun, event["dur"] / 1e6)
    return dict(sorted(first.items(), key=lambda item: item[1][0]))


def plain_tune_wall(config: RunConfig, workdir: Path) -> float:
    """Seconds for the plain loop as a Tune function trainable (no Train, no MLflow), reporting each epoch."""

    def trainable(_: dict) -> None:
        train_in_process(config, on_epoch=lambda epoch: tune.report({"val_acc": epoch.val_acc}))

    started = time.time()
    with progress_view("plain-tune", config.epochs, interval_s=60) as output:  # the sweep's console, not Tune's
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"CPU": config.scaling.cpus_per_worker}),
            run_config=tune.RunConfig(name="plain-tune", storage_path=str(workdir / "ray"), **output),
        )
        results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"the plain Tune trial failed: {results.errors[0]}")
    return time.time() - started


def import_seconds(module: str) -> dict[str, float]:
    """Seconds a fresh interpreter takes to import `module` ("total") and each HEAVY package it pulls in."""
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    seconds: dict[str, float] = {}
    for line in probe.stderr.splitlines():  # "import time: self | cumulative | name", once per module
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)$", line)
        if match and match.group(2) in (*HEAVY, module):
            seconds["total" if match.group(2) == module else match.group(2)] = int(match.group(1)) / 1e6
    return seconds


def main() -> None:
    """Measure all three side by side and print the phases and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()

    for process, module in PROCESS_IMPORTS.items():
        seconds = import_seconds(module)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]) if k != "total")
        print(f"import in a {process} ({module}): {seconds['total']:.1f} s ({parts})")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sweep = one_trial_sweep(args.epochs, workdir)
        started = time.perf_counter()
        epochs = train_in_process(sweep.base).epochs
        plain_wall = time.perf_counter() - started
        compute = sum(epoch.seconds for epoch in epochs)
        ensure_ray()
        tune_wall = plain_tune_wall(sweep.base, workdir)
        phases = geosweep_phases(sweep)

    print(f"\n(c) plain PyTorch loop: {plain_wall:.1f} s wall, {compute:.1f} s compute ({len(epochs)} epochs)")
    print(f"(b) plain Tune trainable: {tune_wall:.1f} s wall = compute + {tune_wall - compute:.1f} s")
    print(f"(a) geosweep sweep, 1 trial: {phases['wall']:.1f} s wall = compute + {phases['wall'] - compute:.1f} s")
    for phase, seconds in phases.items():
        if phase not in ("wall", "trial"):
            print(f"    {phase}: {seconds:.1f} s")
    trial = phases["trial"]
    print(f"    the trial (parent run -> its run ended): {trial:.1f} s = compute + {trial - compute:.1f} s")
    print(f"ratios wall / compute: (a) {phases['wall'] / compute:.1f}, (b) {tune_wall / compute:.1f}, (c) 1.0")
    print(f"goal: a 1-worker trial's wall <= compute + 8 s: {'met' if trial <= compute + 8 else 'not met'}")


if __name__ == "__main__":
    main()
