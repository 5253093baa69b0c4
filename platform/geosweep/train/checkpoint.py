"""Checkpoints: plain tensors and primitives only, so they load with `weights_only=True`."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray.train
import torch

CHECKPOINT_FILE = "checkpoint.pt"


@contextmanager
def checkpoint_dir(state: dict[str, Any] | None) -> Iterator[ray.train.Checkpoint | None]:
    """Write `state` to a temporary directory and yield it as a Ray checkpoint (None passes through).

    Ray copies the directory to storage inside `ray.train.report`, so report within the block.
    """
    if state is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / CHECKPOINT_FILE)
        yield ray.train.Checkpoint.from_directory(tmp)


def load_state(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    """The state `checkpoint_dir` wrote, on the CPU."""
    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")
