"""Both sides of TinvNN's claim on one budget: invariant inputs, equivariant layers, learned canonicalization.

    python -m geosweep.bench.equivariant_baselines [--seeds 3] [--epochs 12] [--points 128] [--train-per-class 24]

Every entry trains on `shapes` for the same epochs, batch size, optimizer and seeds, each training
cloud turned by a fresh rotation about z every epoch, and is tested on the same test clouds under z
and under SO(3) rotations: test accuracy as the mean over seeds with a 95 % t-interval, the rotation
certificate a trial logs (the largest logit change under random rotations and permutations), training
samples/s (forward and backward, representation included) and parameters, side by side. raw + dgcnn
is the negative control. A plain one-process loop: no Ray, no MLflow.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch.nn import functional as F

from geosweep import random_streams
from geosweep.config import parse_run_config
from geosweep.data.rotations import ROTATION_PROTOCOLS, rotate
from geosweep.data.shapes import shapes
from geosweep.data.splits import PointCloudSplits
from geosweep.invariance import certify_model
from geosweep.model import InvariantModel, build_model

# DGCNN at a CPU size, and VN-DGCNN at Deng et al.'s ratio to it: a third of the channels (a vector holds 3 numbers).
DGCNN = {"name": "dgcnn", "kwargs": {"widths": [32, 32, 64], "k": 10, "emb_dims": 128, "head_widths": [64]}}
VN_DGCNN = {"name": "vn_dgcnn", "kwargs": {"widths": [10, 10, 21], "k": 10, "emb_dims": 42, "head_widths": [64]}}
# The entries, by the name the table prints: (representation, backbone).
ENTRIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tinv_mds + dgcnn": ({"name": "tinv_mds"}, DGCNN),
    "fa + dgcnn": ({"name": "fa"}, DGCNN),
    "raw + vn_dgcnn": ({"name": "raw"}, VN_DGCNN),
    "learned_canon + dgcnn": ({"name": "learned_canon"}, DGCNN),
    "raw + dgcnn": ({"name": "raw"}, DGCNN),
}
EVAL_CHUNK = 64  # test clouds per forward
CERTIFIED_CLOUDS = 32  # test clouds the rotation certificate checks, 8 random rotations each
TIMING_ROUNDS = 10  # training steps timed per entry for samples/s, the entries taking turns


@dataclass(frozen=True)
class Score:
    """One trained model's figures."""

    acc_z: float  # test accuracy, test clouds turned about z (the training distribution)
    acc_so3: float  # the same clouds under Haar-random 3-D rotations
    rotation_logit_diff: float  # certify_model's invariance/max_logit_diff under rotations
    params: int


def build(representation: dict[str, Any], backbone: dict[str, Any], num_classes: int, seed: int) -> InvariantModel:
    """The registered representation and backbone as one model, its initialisation drawn from `seed`."""
    config = parse_run_config(
        {
            "dataset": {"name": "shapes"},
            "representation": representation,
            "backbone": backbone,
            "epochs": 1,
            "seed": seed,
        }
    )
    torch.manual_seed(seed)
    return build_model(config, dim=3, out_dim=num_classes)


@torch.no_grad()
def accuracy(model: torch.nn.Module, points: np.ndarray, labels: np.ndarray) -> float:
    """Eval-mode accuracy on (M, N, 3) clouds."""
    model.eval()
    x, y = torch.from_numpy(points), torch.from_numpy(labels)
    correct = sum(
        int((model(x[i : i + EVAL_CHUNK]).argmax(-1) == y[i : i + EVAL_CHUNK]).sum())
        for i in range(0, len(x), EVAL_CHUNK)
    )
    return correct / len(x)


def train_and_score(
    representation: dict[str, Any],
    backbone: dict[str, Any],
    data: PointCloudSplits,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 0.002,
) -> Score:
    """Train one entry z-rotated with Adam, then score it on the test clouds under z and SO(3).

    Args:
        representation: registered name and kwargs, as in a run config.
        backbone: registered name and kwargs.
        data: canonical-pose clouds.
        epochs: passes over the training clouds (the last partial batch is dropped).
        seed: the model's initialisation, the batch order and the rotations.
        batch_size: clouds per step.
        lr: Adam's learning rate.
    """
    model = build(representation, backbone, len(data.class_names), seed)
    step = training_step(model, lr)
    labels = torch.from_numpy(data.train.labels)
    for epoch in range(epochs):
        rng = random_streams.generator("augment.train", seed, 0, epoch)
        turned = torch.from_numpy(rotate(data.train.points, "z", rng))
        for batch in torch.randperm(len(labels)).split(batch_size):
            if len(batch) == batch_size:
                step(turned[batch], labels[batch])
    acc = {}
    for protocol in ("z", "so3"):
        rng = random_streams.generator("robustness.rotation", seed, ROTATION_PROTOCOLS.index(protocol))
        acc[protocol] = accuracy(model, rotate(data.test.points, protocol, rng), data.test.labels)
    certificate = certify_model(model, torch.from_numpy(data.test.points[:CERTIFIED_CLOUDS]), {"rotation"}, seed=seed)
    return Score(
        acc["z"], acc["so3"], certificate["invariance/max_logit_diff"], sum(p.numel() for p in model.parameters())
    )


def training_step(model: torch.nn.Module, lr: float) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One Adam step of `model` (put in training mode) on cross-entropy, as a function of a batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(points: torch.Tensor, labels: torch.Tensor) -> None:
        loss = F.cross_entropy(model(points), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def samples_per_sec(names: list[str], data: PointCloudSplits, batch_size: int = 32) -> dict[str, float]:
    """Training clouds per second of each entry (forward, backward, optimizer step, representation included).

    The entries take turns, one step each per round, and each keeps its fastest step: on a shared
    machine the fastest is the least disturbed, and taking turns spreads any disturbance evenly.
    """
    points, labels = torch.from_numpy(data.train.points[:batch_size]), torch.from_numpy(data.train.labels[:batch_size])
    steps = {name: training_step(build(*ENTRIES[name], len(data.class_names), seed=0), 0.002) for name in names}
    best = dict.fromkeys(names, float("inf"))
    for _ in range(TIMING_ROUNDS):
        for name, step in steps.items():
            started = time.perf_counter()
            step(points, labels)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: batch_size / seconds for name, seconds in best.items()}


def interval(values: list[float]) -> str:
    """Mean and the half-width of its 95 % t-interval over seeds, as "0.812 +- 0.031"."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.3f} +- {half:.3f}"


def main() -> None:
    """The command line: train every entry for every seed, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--points", type=int, default=128)
    parser.add_argument("--train-per-class", type=int, default=24)
    parser.add_argument("--test-per-class", type=int, default=16)
    parser.add_argument("--entries", nargs="+", choices=list(ENTRIES), default=list(ENTRIES))
    args = parser.parse_args()

    data = shapes(
        seed=0, num_points=args.points, train_per_class=args.train_per_class, test_per_class=args.test_per_class
    )
    print(
        f"shapes: {len(data.train.labels)} training / {len(data.test.labels)} test clouds of {args.points} points, "
        f"{len(data.class_names)} classes; {args.epochs} epochs, batch 32, Adam lr 0.002, trained on z, "
        f"seeds 0..{args.seeds - 1}; accuracy: mean +- 95 % t-interval half-width over seeds"
    )
    scores = {}
    for name in args.entries:
        scores[name] = [train_and_score(*ENTRIES[name], data, epochs=args.epochs, seed=s) for s in range(args.seeds)]
        print(f"trained {name}: {scores[name]}", flush=True)
    throughput = samples_per_sec(args.entries, data)
    print("| entry | test acc, z | test acc, SO(3) | max logit change, rotations | train samples/s | parameters |")
    print("|---|---|---|---|---|---|")
    for name, runs in scores.items():
        print(
            f"| {name} | {interval([r.acc_z for r in runs])} | {interval([r.acc_so3 for r in runs])} | "
            f"{max(r.rotation_logit_diff for r in runs):.1e} | {throughput[name]:.0f} | {runs[0].params:,} |"
        )


if __name__ == "__main__":
    main()
