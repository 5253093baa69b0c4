"""The container every point-cloud dataset returns, and the fixed rotations of its validation and test splits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from geosweep import random_streams

SPLITS = ("train", "val", "test")  # a split's index here is the key of its random streams ("split" in STREAMS)


@dataclass(frozen=True)
class Split:
    """One split's point clouds and their labels."""

    points: np.ndarray  # (M, N, d) float32
    labels: np.ndarray  # (M,) int64


@dataclass(frozen=True)
class PointCloudSplits:
    """A classification dataset's train, validation and test splits and its class names."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """How many classes the labels index."""
        return len(self.class_names)

    @property
    def dim(self) -> int:
        """The points' dimension (3 for point clouds)."""
        return self.train.points.shape[-1]


def rotate_evaluation_splits(splits: PointCloudSplits, train: str, test: str, seed: int) -> PointCloudSplits:
    """Rotate each validation and test cloud once, by a rotation drawn from its split's protocol: fixed sets.

    Val follows the train protocol (it measures in-distribution accuracy); test follows the test
    protocol, so z/SO3 is one config. The training clouds keep their canonical pose: their rotations
    are drawn afresh every epoch (data/augmentation.py), as the literature trains.

    Args:
        splits: clouds in canonical pose.
        train: protocol for val ("none", "z", "so3").
        test: protocol for test.
        seed: rotations are drawn from the streams "rotation.val" and "rotation.test" of it.
    """
    from geosweep.data.rotations import rotate

    def rotated(split: Split, protocol: str, name: str) -> Split:
        rng = random_streams.generator(f"rotation.{name}", seed)
        return dataclasses.replace(split, points=rotate(split.points, protocol, rng))

    return dataclasses.replace(splits, val=rotated(splits.val, train, "val"), test=rotated(splits.test, test, "test"))
