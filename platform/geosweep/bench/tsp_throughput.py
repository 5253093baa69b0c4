"""TSP training throughput: `geosweep train` against a plain REINFORCE loop of its model and Kool et al.'s code (#17).

    python -m geosweep.bench.tsp_throughput [--epochs 3] [--epoch-size 25600] [--val-size 2000] [--graph-size 20]
        [--kool-repo PATH]

Every side trains configs/train/tsp20_am_kool.yaml, Kool et al.'s recipe: the Attention Model of 3 layers x 128,
8 heads, tanh clip 10, on uncentred cities; batch 256; the greedy-rollout baseline after one warm-up epoch of
the moving average, its paired t-test on as many held-out instances as the validation set; Adam 1e-4;
gradient norms clipped to 1; fp32; greedy validation on the same fixed set after every epoch; the same
torch thread count. The validation set and its LKH reference tours are made before any side is timed.

(a) `geosweep train` in a fresh process: a local Ray, Ray Train with one worker holding `--threads` CPUs, a
    real MLflow SQLite store in a temp dir; overall is launch to exit.
(b) A plain loop in this process, written as Kool et al.'s train.py is (train_epoch, rollout, validate and
    RolloutBaseline.epoch_callback): it shares geosweep's model class and data sampler, nothing of its loop.
(c) geosweep's epoch in this process (train/training.py's Training and the steps train/loop.py runs around
    it, without Ray), each phase timed: the outermost phase running owns the time, so nothing counts twice.
(d) With `--kool-repo`, a checkout of Kool et al.'s attention-learn-to-route (github.com/wouterkool/
    attention-learn-to-route; nothing is downloaded): their own run.py in a fresh process on the same budget
    and validation set, with their defaults elsewhere (seed 1234, evaluation batch 1,024, a data-loader
    process). This is the reference implementation issue #17 measures against.

Prints instances/s overall and in the epochs' training loops for (a), (b) and (d), geosweep / each, their
validation gaps, where (a)'s time went by its MLflow timestamps, and (c)'s phases per epoch.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mlflow.tracking import MlflowClient

from geosweep.bench.overhead import BENCH_EXPERIMENT, geosweep_train
from geosweep.config import RunConfig, load_run_config
from geosweep.data import tours
from geosweep.data.tsp import TSPData
from geosweep.model import TourModel, build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tracking import EpochLogger
from geosweep.train.checkpoint import checkpoint_dir
from geosweep.train.live_metrics import LiveMetrics
from geosweep.train.training import Training

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "train" / "tsp20_am_kool.yaml"
KOOL_EVAL_BATCH = 1024  # Kool et al.'s eval_batch_size: their rollouts, validation and t-test decode this many at once


@dataclass(frozen=True)
class Throughput:
    """One side's training: instances, seconds, and the last validation."""

    instances: int  # trained on, over all epochs
    overall_seconds: float  # launch (or the loop's start) to the end, validation and everything else included
    in_epoch_seconds: float  # the epochs' training loops: instances drawn, the baseline's rollout, the steps
    val_tour_len: float
    val_gap: float  # % over the LKH reference, greedy
    t_test_instances: int  # held-out instances the policy decoded for the baseline's t-tests, over all epochs

    @property
    def overall_rate(self) -> float:
        """Training instances per second of the whole run."""
        return self.instances / self.overall_seconds

    @property
    def in_epoch_rate(self) -> float:
        """Training instances per second of the training loops."""
        return self.instances / self.in_epoch_seconds


# --- (b) the plain loop, as Kool et al.'s train.py and reinforce_baselines.py do it


def tour_lengths(cities: torch.Tensor, tours_: torch.Tensor) -> torch.Tensor:
    """Closed tour lengths, after asserting every tour is a permutation (Kool et al.'s TSP.get_costs)."""
    assert (tours_.sort(dim=1).values == torch.arange(tours_.shape[1])).all(), "invalid tour"
    ordered = cities.gather(1, tours_.unsqueeze(-1).expand(-1, -1, 2))
    return (ordered - ordered.roll(-1, dims=1)).norm(dim=-1).sum(dim=1)


def rollout(model: TourModel, cities: torch.Tensor) -> torch.Tensor:
    """Greedy tour lengths in eval mode, KOOL_EVAL_BATCH instances at a time (Kool et al.'s rollout)."""
    model.eval()
    with torch.no_grad():
        return torch.cat([
            tour_lengths(batch, model(batch, decode="greedy")[0]) for batch in cities.split(KOOL_EVAL_BATCH)
        ])  # fmt: skip


def plain_reinforce(config: RunConfig, data: TSPData, checkpoint: Path) -> Throughput:
    """Train `config` with Kool et al.'s loop in this process: no Ray, DDP, MLflow or geosweep training code.

    Per epoch: fresh instances, the frozen baseline's greedy rollout of all of them (once the warm-up is
    over), the steps (sampled tours, REINFORCE loss, Adam, clipped gradients), a checkpoint, greedy
    validation, and the paired t-test of policy against baseline on the held-out set, which makes the
    policy the new baseline (and draws a new held-out set) when it is significantly better.
    """
    from scipy.stats import ttest_rel

    started = time.perf_counter()
    task = TASKS.build(config.task.name, config.task.kwargs)  # its settings, resolved with their defaults
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config, dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)

    def new_baseline() -> tuple[TourModel, torch.Tensor, torch.Tensor]:
        frozen = copy.deepcopy(model)
        held_out = torch.from_numpy(data.sample_train(rng, task.baseline_eval_size))
        return frozen, held_out, rollout(frozen, held_out)

    baseline, held_out, baseline_lengths = new_baseline()
    average = None  # the moving average of the warm-up
    in_epoch, t_test_instances = 0.0, 0
    steps = task.epoch_size // config.batch_size
    for epoch in range(config.epochs):
        epoch_started = time.perf_counter()
        cities = torch.from_numpy(data.sample_train(rng, steps * config.batch_size))
        # Their WarmupBaseline: the moving average in the warm-up epoch (the config has 1), then the rollout,
        # decoded for the whole epoch up front (wrap_dataset).
        rollout_lengths = rollout(baseline, cities) if epoch >= task.warmup_epochs else None
        model.train()
        for step in range(steps):
            batch = slice(step * config.batch_size, (step + 1) * config.batch_size)
            tours_, log_likelihood = model(cities[batch], decode="sample")
            lengths = tour_lengths(cities[batch], tours_)
            if rollout_lengths is None:
                mean = lengths.mean().detach()
                average = mean if average is None else task.ema_beta * average + (1 - task.ema_beta) * mean
            reference = average if rollout_lengths is None else rollout_lengths[batch]
            loss = ((lengths - reference) * log_likelihood).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
            optimizer.step()
        in_epoch += time.perf_counter() - epoch_started
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "baseline": baseline.state_dict()},
            checkpoint,
        )
        val_lengths = rollout(model, torch.from_numpy(data.val.coords)).double()
        candidate = rollout(model, held_out)
        t_test_instances += len(held_out)
        if candidate.mean() < baseline_lengths.mean():
            t, p = ttest_rel(candidate.numpy(), baseline_lengths.numpy())
            if t < 0 and p / 2 < task.t_test_alpha:
                baseline, held_out, baseline_lengths = new_baseline()
    gaps = 100 * (val_lengths / torch.from_numpy(data.val.ref_lengths) - 1)
    return Throughput(
        instances=config.epochs * steps * config.batch_size,
        overall_seconds=time.perf_counter() - started,
        in_epoch_seconds=in_epoch,
        val_tour_len=val_lengths.mean().item(),
        val_gap=gaps.mean().item(),
        t_test_instances=t_test_instances,
    )


# --- (a) geosweep train


@dataclass(frozen=True)
class GeosweepRun:
    """`geosweep train`'s figures, from its process and its MLflow run."""

    throughput: Throughput
    worker_threads: str  # torch's threads in the Train worker, as the run's tag says
    to_step_zero: float  # launch to the step-0 metrics in MLflow (Ray, worker, data, untrained validation)
    epochs_seconds: float  # step 0 to the last epoch in MLflow
    after_last_epoch: float  # the last epoch in MLflow to the process's exit (final metrics, model, shutdown)


def run_geosweep(config_path: Path, overrides: list[str], workdir: Path) -> GeosweepRun:
    """`geosweep train` on `config_path` with `overrides`, in a fresh process; its figures from MLflow."""
    client, run, launched = geosweep_train(config_path, overrides, workdir)
    ended = time.time()
    history = {
        name: sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        for name in ("val_gap", "val_tour_len", "epoch_seconds", "baseline/eval_instances")
    }
    config = load_run_config(config_path, overrides)
    steps = config.task.kwargs["epoch_size"] // config.batch_size
    stamps = [m.timestamp / 1000 for m in history["val_gap"]]  # step 0, then every epoch
    return GeosweepRun(
        throughput=Throughput(
            instances=config.epochs * steps * config.batch_size,
            overall_seconds=ended - launched,
            in_epoch_seconds=sum(m.value for m in history["epoch_seconds"]),
            val_tour_len=history["val_tour_len"][-1].value,
            val_gap=history["val_gap"][-1].value,
            t_test_instances=int(sum(m.value for m in history["baseline/eval_instances"])),
        ),
        worker_threads=run.data.tags.get("torch.num_threads", "?"),
        to_step_zero=stamps[0] - launched,
        epochs_seconds=stamps[-1] - stamps[0],
        after_last_epoch=ended - stamps[-1],
    )


# --- (d) Kool et al.'s own code

# Their run.py imports tensorboard_logger even when --no_tensorboard leaves it unused: this stand-in, first on
# their path, spares installing it.
TENSORBOARD_STAND_IN = "class Logger:  # unused under --no_tensorboard\n    def __init__(self, *args, **kwargs): pass\n"


def run_kool(repo: Path, config: RunConfig, data: TSPData, threads: int, workdir: Path) -> Throughput:
    """Kool et al.'s run.py from `repo` in a fresh process, on `config`'s budget and `data`'s validation set.

    Its training loops are timed from each "Start train epoch" line to the next "Finished epoch" line, as
    this process reads them: the epoch's instances, its baseline rollout and its steps, as for the others.
    """
    task = TASKS.build(config.task.name, config.task.kwargs)
    val_file = workdir / "kool_val.pkl"
    val_file.write_bytes(pickle.dumps(data.val.coords.tolist()))  # their dataset format: lists of [x, y]
    stand_in = workdir / "kool_path"
    stand_in.mkdir(exist_ok=True)
    (stand_in / "tensorboard_logger.py").write_text(TENSORBOARD_STAND_IN)
    command = [
        sys.executable, "-u", "run.py", "--problem", "tsp", "--graph_size", str(data.val.coords.shape[1]),
        "--baseline", "rollout", "--bl_warmup_epochs", str(task.warmup_epochs), "--exp_beta", str(task.ema_beta),
        "--bl_alpha", str(task.t_test_alpha), "--batch_size", str(config.batch_size),
        "--epoch_size", str(task.epoch_size), "--n_epochs", str(config.epochs), "--val_size", str(len(data.val.coords)),
        "--val_dataset", str(val_file), "--lr_model", str(config.optimizer.lr), "--max_grad_norm", str(task.grad_clip),
        "--no_cuda", "--no_tensorboard", "--no_progress_bar", "--output_dir", str(workdir / "kool_outputs"),
    ]  # fmt: skip
    environment = os.environ | {"OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(stand_in)}
    started = time.perf_counter()
    epoch_started, in_epoch, val_tour_len = None, 0.0, float("nan")
    with subprocess.Popen(
        command, cwd=repo, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        output = []
        for line in process.stdout:
            output.append(line)
            if line.startswith("Start train epoch"):
                epoch_started = time.perf_counter()
            elif line.startswith("Finished epoch") and epoch_started is not None:
                in_epoch += time.perf_counter() - epoch_started
            elif match := re.match(r"Validation overall avg_cost: (\S+)", line):
                val_tour_len = float(match.group(1))
    if process.returncode != 0:
        raise RuntimeError(f"Kool et al.'s run.py in {repo} failed ({process.returncode}):\n{''.join(output[-20:])}")
    return Throughput(
        instances=config.epochs * task.epoch_size,  # their data loader keeps a short last batch
        overall_seconds=time.perf_counter() - started,
        in_epoch_seconds=in_epoch,
        val_tour_len=val_tour_len,
        # They print the mean length only: the gap of the means, against the others' mean of per-instance gaps.
        val_gap=100 * (val_tour_len / data.val.ref_lengths.mean() - 1),
        t_test_instances=config.epochs * len(data.val.coords),
    )


# --- (c) geosweep's epoch in this process, by phase


class Phases:
    """Wall seconds per named phase. A phase entered while another runs counts to that outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._running: str | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name`, unless it runs inside another phase."""
        if self._running is not None:
            yield
            return
        self._running, started = name, time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started
            self._running = None

    def timed(self, name: str, function: Callable) -> Callable:
        """`function`, its calls timed as `name`."""

        @functools.wraps(function)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return function(*args, **kwargs)

        return timed_call

    def take(self) -> dict[str, float]:
        """The seconds so far, and start again from zero."""
        seconds, self.seconds = dict(self.seconds), defaultdict(float)
        return seconds


def geosweep_phases(config: RunConfig, workdir: Path) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Train `config` as one geosweep Train worker does, in this process on CPU, with its phases timed.

    Each epoch is train/loop.py's: Training.train_epoch (reporting every step to live metrics), the task's
    validation, the checkpoint written, the epoch logged to a real MLflow SQLite store. Without Ray, so
    neither Ray's report nor its copy of the checkpoint to storage is in here.

    Returns:
        Per epoch: seconds per phase and `epoch` (the whole epoch); and the once-per-run phases.
    """
    phases = Phases()
    training = Training(config, rank=0, world_size=1, device=torch.device("cpu"))
    task, model = training.task, training.model
    rollout_baseline = getattr(task.baseline, "rollout", task.baseline)
    # An instance's `forward` is what nn.Module calls: the policy's (sampling; greedy inside validation or the
    # t-test, which are outer phases) and the frozen baseline's (its greedy rollout of the training instances).
    model.forward = phases.timed("sampling (policy forward)", model.forward)
    if hasattr(rollout_baseline, "model"):
        rollout_baseline.model.forward = phases.timed("baseline rollout", rollout_baseline.model.forward)
        rollout_baseline.epoch_end = phases.timed("t-test evaluation", rollout_baseline.epoch_end)
    task.evaluate = phases.timed("validation", task.evaluate)
    live = LiveMetrics(BENCH_EXPERIMENT, "tsp-throughput", rank=0)
    live.step, live.epoch = phases.timed("live metrics", live.step), phases.timed("live metrics", live.epoch)
    uri = f"sqlite:///{workdir / 'phases.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("phases")).info.run_id
    check_tours = tours.check_tours
    tours.check_tours = phases.timed("tour-length check", check_tours)  # tour_length calls it by this name
    try:
        with EpochLogger(uri, run_id) as logger:
            with phases.phase("step-0 metrics"):
                logger.log_step_once(0, task.start_metrics())
            once, epochs = phases.take(), []
            for epoch in range(1, config.epochs + 1):
                started = time.perf_counter()
                metrics = training.train_epoch(epoch, on_step=live.step)
                live.epoch(epoch)
                metrics |= task.evaluate()
                with phases.phase("checkpoint"), checkpoint_dir({**training.state_dict(), "epoch": epoch}):
                    pass
                with phases.phase("MLflow"):
                    logger.log_epoch_once(epoch, metrics)
                    logger.settle()
                epochs.append(phases.take() | {"epoch": time.perf_counter() - started})
            with phases.phase("final metrics"):
                logger.log_step_once(config.epochs, task.final_metrics())
            once |= phases.take()
    finally:
        tours.check_tours = check_tours
    return epochs, once


# --- the command line


def main() -> None:
    """The command line: (b), (a) and (c) in turn on one budget, then their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epoch-size", type=int, default=25_600, help="training instances per epoch")
    parser.add_argument("--val-size", type=int, default=2_000, help="validation instances, and the t-test's")
    parser.add_argument("--graph-size", type=int, default=20, help="cities per instance")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads on every side")
    parser.add_argument("--breakdown-epochs", type=int, default=2, help="epochs of (c); the first warms up")
    parser.add_argument("--kool-repo", type=Path, help="a checkout of attention-learn-to-route: also run (d)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        overrides = [
            f"epochs={args.epochs}",
            f"task.kwargs.epoch_size={args.epoch_size}",
            f"task.kwargs.baseline_eval_size={args.val_size}",
            f"dataset.kwargs.num_nodes={args.graph_size}",
            f"dataset.kwargs.val_size={args.val_size}",
            f"dataset.kwargs.data_dir={workdir / 'tsp'}",
            f"scaling.cpus_per_worker={args.threads}",
        ]
        config = load_run_config(CONFIG, overrides)
        torch.set_num_threads(args.threads)
        # The fixed sets and their LKH tours, solved now and kept in data_dir for every side.
        data: TSPData = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
        plain = plain_reinforce(config, data, workdir / "plain_checkpoint.pt")
        geosweep = run_geosweep(CONFIG, overrides, workdir)
        kool = run_kool(args.kool_repo, config, data, args.threads, workdir) if args.kool_repo else None
        breakdown_config = load_run_config(CONFIG, [*overrides, f"epochs={args.breakdown_epochs}"])
        epochs, once = geosweep_phases(breakdown_config, workdir)

    print(
        f"TSP{args.graph_size}, batch {config.batch_size}, {args.epochs} epochs of {args.epoch_size:,} instances, "
        f"validation and t-test on {args.val_size:,}; torch threads: plain {torch.get_num_threads()}, "
        f"geosweep's worker {geosweep.worker_threads}"
    )
    print(f"{'':38} {'overall inst/s':>15} {'in-epoch inst/s':>16} {'val gap %':>10} {'val tour len':>13}")
    sides = {"plain PyTorch loop (Kool's train.py)": plain, "geosweep train (1 worker)": geosweep.throughput}
    if kool:
        sides["Kool et al.'s own run.py"] = kool
    for name, side in sides.items():
        print(
            f"{name:38} {side.overall_rate:15.1f} {side.in_epoch_rate:16.1f} "
            f"{side.val_gap:10.2f} {side.val_tour_len:13.4f}"
        )
    for name, reference, note in [("plain", plain, ""), ("Kool's", kool, "   (goal overall >= 1.0)")]:
        if reference:
            ratio = geosweep.throughput.overall_rate / reference.overall_rate
            in_epoch_ratio = geosweep.throughput.in_epoch_rate / reference.in_epoch_rate
            print(f"{f'geosweep / {name}':38} {ratio:15.3f} {in_epoch_ratio:16.3f}{note}")
    if kool:
        print(f"Kool et al.'s run.py: {kool.overall_seconds:.1f} s; its gap is its mean length's (it prints no other)")
    print(
        f"seconds: plain {plain.overall_seconds:.1f} ({plain.in_epoch_seconds:.1f} in its training loops); "
        f"geosweep {geosweep.throughput.overall_seconds:.1f}: launch -> step 0 in MLflow {geosweep.to_step_zero:.1f}, "
        f"epochs {geosweep.epochs_seconds:.1f} ({geosweep.throughput.in_epoch_seconds:.1f} in its training loops), "
        f"last epoch -> exit {geosweep.after_last_epoch:.1f}"
    )
    print(
        f"held-out instances the policy decoded for the t-tests: plain {plain.t_test_instances:,}, "
        f"geosweep {geosweep.throughput.t_test_instances:,} (it stops at the first look on overwhelming evidence)"
    )
    print_breakdown(epochs, once)


def print_breakdown(epochs: list[dict[str, float]], once: dict[str, float]) -> None:
    """(c)'s table: seconds per phase and epoch, what no phase holds as the rest, and the once-per-run phases."""
    names = sorted({name for epoch in epochs for name in epoch} - {"epoch"}, key=lambda n: -epochs[-1].get(n, 0.0))
    print("geosweep's epoch in process, seconds by phase (epoch 1 trains against the moving average):")
    print(f"  {'phase':40}" + "".join(f"{f'epoch {i}':>10}" for i in range(1, len(epochs) + 1)))
    for name in names:
        print(f"  {name:40}" + "".join(f"{epoch.get(name, 0.0):10.2f}" for epoch in epochs))
    rest = [epoch["epoch"] - sum(v for k, v in epoch.items() if k != "epoch") for epoch in epochs]
    print(f"  {'backward, Adam, instances, the rest':40}" + "".join(f"{r:10.2f}" for r in rest))
    print(f"  {'whole epoch':40}" + "".join(f"{epoch['epoch']:10.2f}" for epoch in epochs))
    print("  once per run: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in once.items()))


if __name__ == "__main__":
    main()
