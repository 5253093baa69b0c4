"""Evaluation protocols: sharded accuracy, the rotation-robustness table and invariance certificate, ambiguity."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from geosweep import random_streams
from geosweep.data.rotations import ROTATION_PROTOCOLS, rotate
from geosweep.invariance import certify_model
from geosweep.model import EVAL_BATCH
from geosweep.representations.base import ambiguity_stats


def all_reduce_sum(value: torch.Tensor, world_size: int) -> torch.Tensor:
    """`value` summed over all ranks, in place (unchanged with one rank: no collective)."""
    if world_size > 1:
        dist.all_reduce(value)
    return value


@torch.no_grad()
def accuracy(
    model: torch.nn.Module,
    task: Any,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    rank: int,
    world_size: int,
    device: torch.device,
    input_name: str = "points",
) -> float:
    """Accuracy over all of `inputs`; each rank scores every world_size-th sample, counts are summed.

    Runs the model itself, not its DDP wrapper: DDP's forward would need equal work on every rank.
    With world_size 1 it is local to the calling rank (no collective).

    Args:
        model: the run's model.
        task: scores logits against labels (`num_correct`).
        inputs: (M, N, d) points, or (M, F, N, c) frames with `input_name` "frames".
        labels: (M,) class indices.
        rank: this rank, whose shard is scored.
        world_size: how many ranks share the work.
        device: where the model is.
        input_name: the model's argument `inputs` are passed as ("points" or "frames").
    """
    model.eval()
    inputs, labels = inputs[rank::world_size], labels[rank::world_size]
    counts = torch.zeros(2, device=device)
    for start in range(0, len(inputs), EVAL_BATCH):
        batch_labels = labels[start : start + EVAL_BATCH].to(device)
        logits = model(**{input_name: inputs[start : start + EVAL_BATCH].to(device)})
        counts[0] += task.num_correct(logits, batch_labels)
        counts[1] += len(batch_labels)
    correct, total = all_reduce_sum(counts, world_size).tolist()
    return correct / total if total else float("nan")  # an empty split (e.g. val_fraction 0) has no accuracy


@torch.no_grad()
def robustness_and_certificate(
    model: torch.nn.Module, task: Any, test_points: np.ndarray, test_labels: np.ndarray, invariances: frozenset[str],
    *, samples: int, max_clouds: int, seed: int, device: torch.device,
) -> dict[str, float]:  # fmt: skip  # the data, then the certificate's keyword settings
    """Test accuracy under every rotation protocol, and the model's invariance under its claimed groups.

    Args:
        model: the full model (points in, logits out), representation included.
        task: scores logits against labels (`num_correct`).
        test_points: (M, N, d) canonical-pose test clouds.
        test_labels: (M,) their classes.
        invariances: the representation's declared groups.
        samples: random transformations per group in the certificate.
        max_clouds: test clouds the certificate checks.
        seed: the run's seed (rotations and certificate draws derive from it).
        device: where the model is.

    Returns:
        `test_acc/<protocol>` for each protocol (3-D data) plus the certificate's
        `invariance/max_logit_diff` and `invariance/pred_agreement`, and the same two under
        rotations (`invariance/rotation_*`) for every model.
    """
    model.eval()
    labels = torch.from_numpy(test_labels)
    metrics = {}
    if test_points.shape[-1] == 3:
        for index, protocol in enumerate(ROTATION_PROTOCOLS):
            rng = random_streams.generator("robustness.rotation", seed, index)
            rotated = torch.from_numpy(rotate(test_points, protocol, rng))
            metrics[f"test_acc/{protocol}"] = accuracy(model, task, rotated, labels, 0, 1, device)
    subset = torch.from_numpy(test_points[:max_clouds]).to(device)
    metrics |= certify_model(model, subset, invariances, samples=samples, seed=seed)
    # The same certificate under rotations whatever the representation claims, so raw and
    # invariant models are compared on one axis (raw's own claim covers permutations only).
    rotation = certify_model(model, subset, {"rotation"}, samples=samples, seed=seed)
    metrics |= {key.replace("invariance/", "invariance/rotation_"): value for key, value in rotation.items()}
    return metrics


def ambiguity_fractions(point_sets: list[np.ndarray], chunk: int = 1024) -> dict[str, float]:
    """Where a single canonical frame loses invariance: near-symmetric clouds and near-repeated eigenvalues.

    Counted over every set, in chunks (the statistics work in float64).
    """
    counts = {"num_samples": 0, "ambiguous_sign_count": 0, "small_eigengap_count": 0}
    for points in point_sets:
        for start in range(0, len(points), chunk):
            stats = ambiguity_stats(torch.from_numpy(points[start : start + chunk]))
            for key in counts:
                counts[key] += stats[key]
    total = max(counts["num_samples"], 1)
    return {
        "repr/ambiguous_sign_frac": counts["ambiguous_sign_count"] / total,
        "repr/small_eigengap_frac": counts["small_eigengap_count"] / total,
    }
