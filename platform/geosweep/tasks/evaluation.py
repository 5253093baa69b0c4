"""Evaluation protocols: sharded accuracy, the rotation-robustness table and invariance certificate, ambiguity."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist

from geosweep import random_streams
from geosweep.data.rotations import ROTATION_PROTOCOLS, rotate
from geosweep.invariance import certify_model
from geosweep.model import EVAL_BATCH
from geosweep.representations.base import EIGENGAP_TOL, SKEWNESS_TOL, Representation, frame_conditioning


def all_reduce_sum(value: torch.Tensor, world_size: int) -> torch.Tensor:
    """`value` summed over all ranks, in place (unchanged with one rank: no collective)."""
    if world_size > 1:
        dist.all_reduce(value)
    return value


@torch.no_grad()
def accuracies(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    rank: int,
    world_size: int,
    device: torch.device,
    input_name: str = "points",
) -> dict[str, float]:
    """Overall and mean per-class accuracy over all of `inputs`; each rank scores every world_size-th sample.

    The two numbers ModelNet40 and ScanObjectNN tables give: `acc`, the overall accuracy (correct / all), and
    `mean_class_acc`, each class's accuracy (its recall) averaged over the classes present in the split, which
    a split dominated by a few classes does not inflate. Each rank counts its disjoint shard into a confusion
    matrix, summed over the ranks: the numbers one process scoring the whole split gets.
    Runs the model itself, not its DDP wrapper: DDP's forward would need equal work on every rank.
    With world_size 1 it is local to the calling rank (no collective).

    Args:
        model: the run's model.
        inputs: (M, N, d) points, or (M, F, N, c) frames with `input_name` "frames".
        labels: (M,) class indices.
        num_classes: how many classes the model predicts.
        rank: this rank, whose shard is scored.
        world_size: how many ranks share the work.
        device: where the model is.
        input_name: the model's argument `inputs` are passed as ("points" or "frames").

    Returns:
        {"acc", "mean_class_acc"}; NaN for an empty split (e.g. val_fraction 0).
    """
    if not len(labels):  # every rank holds the whole split, so all of them return here together
        return {"acc": math.nan, "mean_class_acc": math.nan}
    if world_size > 1 and not dist.is_initialized():  # each rank would score its shard alone
        raise RuntimeError(f"accuracies: world_size {world_size}, but no process group is initialised")
    model.eval()
    # Flat (true, predicted) counts. Not torchmetrics: importing it costs about 0.9 s in every process.
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    inputs, labels = inputs[rank::world_size], labels[rank::world_size]
    for start in range(0, len(inputs), EVAL_BATCH):
        logits = model(**{input_name: inputs[start : start + EVAL_BATCH].to(device)})
        truth = labels[start : start + EVAL_BATCH].to(device)
        confusion += torch.bincount(truth * num_classes + logits.argmax(dim=-1), minlength=num_classes**2)
    # rows: the true class, columns: the predicted one
    counts = all_reduce_sum(confusion, world_size).view(num_classes, num_classes).double()
    per_class = counts.sum(dim=1)
    present = per_class > 0
    return {
        "acc": (counts.trace() / per_class.sum()).item(),
        "mean_class_acc": (counts.diagonal()[present] / per_class[present]).mean().item(),
    }


@torch.no_grad()
def robustness_and_certificate(
    model: torch.nn.Module, num_classes: int, test_points: np.ndarray, test_labels: np.ndarray,
    invariances: frozenset[str], *, samples: int, max_clouds: int, seed: int, device: torch.device,
) -> dict[str, float]:  # fmt: skip  # the data, then the certificate's keyword settings
    """Test accuracy under every rotation protocol, and the model's invariance under its claimed groups.

    Args:
        model: the full model (points in, logits out), representation included.
        num_classes: how many classes the model predicts.
        test_points: (M, N, d) canonical-pose test clouds.
        test_labels: (M,) their classes.
        invariances: the groups the whole model claims (`Model.invariances`).
        samples: random transformations per group in the certificate.
        max_clouds: test clouds the certificate checks.
        seed: the run's seed (rotations and certificate draws derive from it).
        device: where the model is.

    Returns:
        `test_acc/<protocol>` and `test_mean_class_acc/<protocol>` for each protocol (3-D data), the certificate's
        `invariance/max_logit_diff` and `invariance/pred_agreement`, and the same two under
        rotations (`invariance/rotation_*`) for every model.
    """
    model.eval()
    labels = torch.from_numpy(test_labels)
    metrics = {}
    for protocol, rotated in robustness_sets(test_points, seed):
        scores = accuracies(model, torch.from_numpy(rotated), labels, num_classes, 0, 1, device)
        metrics |= {f"test_{name}/{protocol}": value for name, value in scores.items()}
    subset = torch.from_numpy(test_points[:max_clouds]).to(device)
    metrics |= certify_model(model, subset, invariances, samples=samples, seed=seed)
    # The same certificate under rotations whatever the model claims, so raw and invariant
    # models are compared on one axis (raw + pointnet's own claim covers no rotation).
    rotation = certify_model(model, subset, {"rotation"}, samples=samples, seed=seed)
    metrics |= {key.replace("invariance/", "invariance/rotation_"): value for key, value in rotation.items()}
    return metrics


def robustness_sets(test_points: np.ndarray, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """The test clouds under each rotation protocol, one fixed draw of the run's seed each (3-D data; none else).

    The inputs of the robustness table's `test_acc/<protocol>`, made one at a time (a copy of the test set each).
    """
    if test_points.shape[-1] != 3:
        return
    for index, protocol in enumerate(ROTATION_PROTOCOLS):
        yield protocol, rotate(test_points, protocol, random_streams.generator("robustness.rotation", seed, index))


def ambiguity_fractions(
    point_sets: list[np.ndarray], representation: Representation | None = None, chunk: int = 1024
) -> dict[str, float]:
    """Where a single canonical frame is unstable, and how often the representation needed a fallback.

    Over every set, in chunks (the statistics work in float64): the fractions of clouds below the
    thresholds `ambiguity_stats` uses (`repr/ambiguous_sign_frac`, `repr/small_eigengap_frac`), the
    median smallest relative eigengap (`repr/median_rel_eigengap`), and `repr/<fallback>_frac` for each
    of the representation's fallbacks (`Representation.fallback_counts`).
    """
    gaps, skews, fallbacks = [], [], Counter()
    for points in point_sets:
        for start in range(0, len(points), chunk):
            clouds = torch.from_numpy(points[start : start + chunk])
            gap, skew = frame_conditioning(clouds)
            gaps.append(gap)
            skews.append(skew)
            if representation is not None:
                fallbacks.update(representation.fallback_counts(clouds))
    gap, skew = torch.cat(gaps), torch.cat(skews)
    total = max(len(gap), 1)
    return {
        "repr/ambiguous_sign_frac": (skew < SKEWNESS_TOL).sum().item() / total,
        "repr/small_eigengap_frac": (gap < EIGENGAP_TOL).sum().item() / total,
        "repr/median_rel_eigengap": gap.median().item() if len(gap) else math.nan,
        **{f"repr/{name}_frac": count / total for name, count in fallbacks.items()},
    }
