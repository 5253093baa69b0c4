"""What the model is fed: raw points, or a deterministic representation's frames, computed once and cached.

A deterministic representation is a pure function of the points, so its
frames are computed once per (data, name + kwargs, code) and reused across
epochs, trials and runs; the backbone then trains on them directly. Stochastic
representations (augmentation, stochastic frame averaging) run in the model.
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
from geosweep.data.cache import RepresentationCache

if TYPE_CHECKING:
    from geosweep.config import RunConfig

CHUNK = 256  # clouds per representation call: bounded memory, still batched


@dataclass(frozen=True)
class Inputs:
    """Every split as the model is fed it."""

    train: torch.Tensor  # (M, N, d) points, or (M, F, N, c) frames when precomputed
    val: torch.Tensor
    test: torch.Tensor
    precomputed: bool
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
    """Points for stochastic representations; cached frames for deterministic ones.

    Rank 0 fills the cache first so the other ranks read it instead of computing it too.
    """
    splits = {"train": data.train.points, "val": data.val.points, "test": data.test.points}
    if not getattr(representation, "deterministic", True):
        return Inputs(**{k: torch.from_numpy(v) for k, v in splits.items()}, precomputed=False, metrics={})

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
    return Inputs(**{k: torch.from_numpy(v) for k, v in frames.items()}, precomputed=True, metrics=metrics)
