"""The container every point-cloud dataset returns, and the rotation protocols applied to it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    points: np.ndarray  # (M, N, d) float32
    labels: np.ndarray  # (M,) int64


@dataclass(frozen=True)
class PointCloudSplits:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def dim(self) -> int:
        return self.train.points.shape[-1]


def apply_rotation_protocols(splits: PointCloudSplits, train: str, test: str, seed: int) -> PointCloudSplits:
    """Rotate each sample once, by a rotation drawn from the split's protocol.

    Train and val follow the train protocol (val measures in-distribution
    accuracy); test follows the test protocol, so z/SO3 is one config.

    Args:
        splits: clouds in canonical pose.
        train: protocol for train and val ("none", "z", "so3").
        test: protocol for test.
        seed: rotations are drawn from streams derived from it, one per split.
    """
    from geosweep.data.rotations import rotate

    def rotated(split: Split, protocol: str, stream: int) -> Split:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1000 + stream]))
        return dataclasses.replace(split, points=rotate(split.points, protocol, rng))

    return dataclasses.replace(
        splits,
        train=rotated(splits.train, train, 0),
        val=rotated(splits.val, train, 1),
        test=rotated(splits.test, test, 2),
    )
