"""What the model is fed: raw points, or a deterministic representation's frames, computed once and cached.

A deterministic representation is a pure function of the points, so its
frames are computed once per (data, name + kwargs, code) and reused across
epochs, trials and runs; the backbone then trains on them directly. Stochastic
representations (augmentation, stochastic frame averaging) run in the model.

The training clouds are drawn afresh every epoch (rotation protocol and
augmentation). Their frames are computed once, from the canonical clouds, only
where the representation is declared invariant to every such draw (tinv_mds or
fa under z or SO(3) rotations); otherwise (raw under rotations, any
representation under jitter) the points are drawn each epoch and the
representation runs in the model on every step.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from geosweep.data import PointCloudSplits
from geosweep.data.augmentation import invariant_to_training_draws
from geosweep.data.cache import RepresentationCache

if TYPE_CHECKING:
    from geosweep.config import RunConfig

CHUNK = 256  # clouds per representation call: bounded memory, still batched


@dataclass(frozen=True)
class Inputs:
    """Every split as the model is fed it, and the model's argument each goes to ("points" or "frames")."""

    train: torch.Tensor  # (M, N, d) canonical points, drawn afresh each epoch, or (M, F, N, c) their frames
    val: torch.Tensor  # the fixed validation set: points, or frames for a deterministic representation
    test: torch.Tensor
    train_name: str
    eval_name: str
    metrics: dict[str, float]  # cache hits, misses and representation seconds, for MLflow


def cache_dir(config: RunConfig) -> Path:
    """The representation cache's directory: the config's, else $GEOSWEEP_CACHE_DIR, else under ~/.cache."""
    default = Path.home() / ".cache" / "geosweep" / "representations"
    return Path(config.cache.dir or os.environ.get("GEOSWEEP_CACHE_DIR") or default)


@torch.no_grad()
def encode(representation: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """(M, N, d) points -> (M, F, N, c) frames, in chunks, in eval mode."""
    representation.eval()
    tensor = torch.from_numpy(points)
    return torch.cat([representation(tensor[i : i + CHUNK]) for i in range(0, len(tensor), CHUNK)]).numpy()


def prepare_inputs(config: RunConfig, data: PointCloudSplits, representation: torch.nn.Module, rank: int) -> Inputs:
    """Each split as points, or as the frames `frame_splits` allows, computed once and cached.

    Args:
        config: the run (cache settings, the train rotation protocol and augmentation).
        data: canonical training clouds; validation and test clouds in their fixed poses.
        representation: the model's representation.
        rank: this worker's rank.
    """
    points = {"train": data.train.points, "val": data.val.points, "test": data.test.points}
    encoded = frame_splits(config, representation)
    frames, metrics = cached_frames(config, {split: points[split] for split in encoded}, representation, rank)
    return Inputs(
        **{split: torch.from_numpy(frames.get(split, clouds)) for split, clouds in points.items()},
        train_name="frames" if "train" in frames else "points",
        eval_name="frames" if "val" in frames else "points",
        metrics=metrics,
    )


def frame_splits(config: RunConfig, representation: torch.nn.Module) -> tuple[str, ...]:
    """The splits a representation's frames can be computed for once.

    None for a stochastic representation; the fixed validation and test sets for a deterministic one, and the
    canonical training clouds too where it is declared invariant to every training draw.
    """
    if not getattr(representation, "deterministic", True):
        return ()
    draws = config.dataset.rotation.train, config.dataset.augmentation
    ignores_draws = invariant_to_training_draws(representation.invariances, *draws)
    return ("train", "val", "test") if ignores_draws else ("val", "test")


def cached_frames(
    config: RunConfig, splits: dict[str, np.ndarray], representation: torch.nn.Module, rank: int
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each split's frames, from the cache or computed (and cached), and what that cost, for MLflow.

    Rank 0 fills the cache first so the other ranks read it instead of computing it too.
    """
    if not splits:
        return {}, {}
    started = time.perf_counter()
    cache = RepresentationCache(cache_dir(config)) if config.cache.enabled else None
    spec = config.representation
    frames = {}
    for turn in (0, 1):  # rank 0 builds, then everyone else reads
        if (rank == 0) == (turn == 0):
            for split, points in splits.items():
                if cache is None:
                    frames[split] = encode(representation, points)
                else:
                    key = cache.key(points, spec.name, spec.kwargs, representation)
                    frames[split] = cache.get_or_build(key, lambda p=points: encode(representation, p))
        if turn == 0 and dist.is_available() and dist.is_initialized():
            dist.barrier()
    metrics = {"repr/seconds": time.perf_counter() - started}
    if cache is not None:
        stats = cache.stats
        metrics |= {
            "cache/hits": stats.hits,
            "cache/misses": stats.misses,
            "cache/rebuilt": len(stats.rebuilt),
            "cache/build_seconds": stats.build_seconds,
        }
    return frames, metrics
