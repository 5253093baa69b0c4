"""The TSP throughput benchmark: its plain loop trains as Kool et al.'s does, its phases cover geosweep's epoch."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch

from geosweep.bench.tsp_throughput import (
    CONFIG,
    Phases,
    geosweep_phases,
    plain_reinforce,
    rollout,
    run_kool,
    tour_lengths,
)
from geosweep.config import load_run_config
from geosweep.data import tours
from geosweep.model import build_model
from geosweep.registry import DATASETS

EPOCH_PHASES = {
    "sampling (policy forward)",
    "tour-length check",
    "baseline rollout",
    "t-test evaluation",
    "validation",
    "checkpoint",
    "live metrics",
    "MLflow",
}


@pytest.fixture
def tiny(tmp_path):
    """The benchmark's config at a size a test affords: TSP10, a small model, two epochs of 1,024."""
    torch.set_num_threads(1)
    return load_run_config(
        CONFIG,
        [
            "epochs=2",
            "optimizer.lr=0.003",
            "task.kwargs.epoch_size=1024",
            "task.kwargs.baseline_eval_size=128",
            "dataset.kwargs.num_nodes=10",
            "dataset.kwargs.val_size=128",
            "dataset.kwargs.test_size=16",
            f"dataset.kwargs.data_dir={tmp_path / 'tsp'}",
            "backbone.kwargs={embed_dim: 16, num_layers: 1, num_heads: 2, ff_hidden: 32}",
        ],
    )


def test_kools_cost_measures_closed_tours_and_refuses_an_invalid_one():
    square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    assert tour_lengths(square, torch.tensor([[0, 1, 2, 3]])).item() == pytest.approx(4.0)
    assert tour_lengths(square, torch.tensor([[0, 2, 1, 3]])).item() == pytest.approx(2 + 2 * math.sqrt(2))
    with pytest.raises(AssertionError, match="invalid tour"):
        tour_lengths(square, torch.tensor([[0, 1, 1, 3]]))


def test_the_plain_loop_counts_every_instance_and_beats_its_untrained_start(tiny, tmp_path):
    data = DATASETS.build(tiny.dataset.name, tiny.dataset.kwargs, seed=tiny.seed)
    torch.manual_seed(tiny.seed)
    untrained = rollout(build_model(tiny, dim=2), torch.from_numpy(data.val.coords)).double()
    untrained_gap = (100 * (untrained / torch.from_numpy(data.val.ref_lengths) - 1)).mean().item()

    trained = plain_reinforce(tiny, data, tmp_path / "checkpoint.pt")
    assert trained.instances == 2 * 1024 and trained.t_test_instances == 2 * 128  # Kool's test: the whole set
    assert 0 < trained.in_epoch_seconds < trained.overall_seconds
    assert trained.val_gap < untrained_gap - 5, (trained.val_gap, untrained_gap)
    assert set(torch.load(tmp_path / "checkpoint.pt", weights_only=True)) == {"model", "optimizer", "baseline"}


# What Kool et al.'s run.py prints around an epoch (train.py's train_epoch and validate), and what it reads.
KOOLS_RUN_PY = """
import argparse, pickle, time
parser = argparse.ArgumentParser()
for flag in ["problem", "graph_size", "baseline", "bl_warmup_epochs", "exp_beta", "bl_alpha", "batch_size",
             "epoch_size", "n_epochs", "val_size", "val_dataset", "lr_model", "max_grad_norm", "output_dir"]:
    parser.add_argument("--" + flag, required=True)
for flag in ["no_cuda", "no_tensorboard", "no_progress_bar"]:
    parser.add_argument("--" + flag, action="store_true", required=True)
opts = parser.parse_args()
from tensorboard_logger import Logger  # run.py's import, whether or not it logs
with open(opts.val_dataset, "rb") as f:
    val = pickle.load(f)
assert len(val) == int(opts.val_size) and all(len(city) == 2 for instance in val for city in instance)
for epoch in range(int(opts.n_epochs)):
    print("Start train epoch {}, lr={} for run run".format(epoch, opts.lr_model))
    time.sleep(0.3)
    print("Finished epoch {}, took 00:00:00 s".format(epoch))
    print("Validation overall avg_cost: {} +- 0.01".format(4.0 - epoch))
"""


def test_kools_run_is_given_the_budget_and_timed_from_its_epoch_lines(tiny, tmp_path):
    # A stand-in for their checkout (tests download nothing): it takes run.py's options and prints its lines.
    repo = tmp_path / "attention-learn-to-route"
    repo.mkdir()
    (repo / "run.py").write_text(textwrap.dedent(KOOLS_RUN_PY))
    data = DATASETS.build(tiny.dataset.name, tiny.dataset.kwargs, seed=tiny.seed)
    kool = run_kool(repo, tiny, data, threads=1, workdir=tmp_path)
    assert kool.instances == 2 * 1024 and kool.val_tour_len == 3.0  # the last validation's
    assert 0.5 < kool.in_epoch_seconds < kool.overall_seconds  # two epochs of 0.3 s, as this process read them
    assert kool.val_gap == pytest.approx(100 * (3.0 / data.val.ref_lengths.mean() - 1))
    (repo / "run.py").write_text("raise SystemExit('no such option')")
    with pytest.raises(RuntimeError, match="no such option"):
        run_kool(repo, tiny, data, threads=1, workdir=tmp_path)


def test_a_phase_inside_another_counts_to_the_outer_one():
    phases = Phases()
    inner = phases.timed("inner", lambda: None)
    outer = phases.timed("outer", lambda: inner())
    outer()
    inner()
    assert set(phases.take()) == {"outer", "inner"}
    outer()
    assert set(phases.take()) == {"outer"}  # take() started afresh, and the inner call counted to outer


def test_the_breakdown_times_every_phase_of_geosweeps_epoch(tiny, tmp_path):
    check_tours = tours.check_tours
    epochs, once = geosweep_phases(tiny, tmp_path)
    assert tours.check_tours is check_tours  # the timed stand-in is gone again
    assert len(epochs) == 2 and set(once) == {"step-0 metrics", "final metrics"}
    assert set(epochs[0]) == EPOCH_PHASES - {"baseline rollout"} | {"epoch"}  # the warm-up uses the moving average
    assert set(epochs[1]) == EPOCH_PHASES | {"epoch"}
    for epoch in epochs:
        assert sum(seconds for name, seconds in epoch.items() if name != "epoch") <= epoch["epoch"]


@pytest.mark.integration
def test_the_cli_prints_both_sides_the_ratio_and_the_breakdown(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "geosweep.bench.tsp_throughput", "--epochs", "1", "--epoch-size", "512",
         "--val-size", "64", "--graph-size", "8", "--breakdown-epochs", "2"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip  # the command line, then how it runs
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "TSP8, batch 256, 1 epochs of 512 instances" in out
    assert "plain PyTorch loop (Kool's train.py)" in out and "geosweep train (1 worker)" in out
    assert "geosweep / plain" in out and "whole epoch" in out and "decoded for the t-tests" in out
    for phase in EPOCH_PHASES:
        assert phase in out, phase
