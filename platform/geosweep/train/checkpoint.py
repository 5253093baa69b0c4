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
# Bumped whenever what a checkpoint holds changes: 2 added the epoch history, the step-0 metrics,
# the LR schedule and the rollout baseline's warm-up state.
CHECKPOINT_FORMAT = 2


class CheckpointFormatError(ValueError):
    """A checkpoint written by a geosweep whose checkpoints this one cannot resume."""


@contextmanager
def checkpoint_dir(
    state: dict[str, Any] | None, checkpoint_type: type[ray.train.Checkpoint] = ray.train.Checkpoint
) -> Iterator[ray.train.Checkpoint | None]:
    """Write `state` to a temporary directory and yield it as a `checkpoint_type` (None passes through).

    Ray copies the directory to storage inside the report (Train's or Tune's), so report within the block.
    """
    if state is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save({**state, "format": CHECKPOINT_FORMAT}, Path(tmp) / CHECKPOINT_FILE)
        yield checkpoint_type.from_directory(tmp)


def load_state(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    """The state `checkpoint_dir` wrote, on the CPU.

    Raises:
        CheckpointFormatError: the checkpoint has another format (an older geosweep wrote it).
    """
    with checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointFormatError(
            f"checkpoint {checkpoint.path} has format {state.get('format', 1)}, this geosweep resumes "
            f"format {CHECKPOINT_FORMAT} only (an older geosweep wrote it): start the run afresh under a new "
            "name or storage_path, or delete that checkpoint"
        )
    return state
