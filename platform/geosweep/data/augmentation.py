"""Training augmentation: every training cloud transformed afresh each epoch, as the literature trains.

A training batch's clouds become R (s * x) + t + e: s scales each cloud about
the origin in its own axes (the shape: one factor per cloud, or one per axis
as DGCNN draws), R is drawn from the train rotation protocol (the pose), t moves
the cloud, and e jitters every point (Gaussian, clipped). Validation and test
clouds are never augmented: they are rotated once by their protocols
(splits.py) and stay fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from geosweep.data.rotations import RotationProtocol, random_rotations

if TYPE_CHECKING:
    from geosweep.config import AugmentationSpec


def augment(
    points: np.ndarray, rotation: RotationProtocol, augmentation: AugmentationSpec, rng: np.random.Generator
) -> np.ndarray:
    """One draw of the training transforms for each cloud of a batch.

    Args:
        points: (B, N, 3) clouds in canonical pose.
        rotation: the train rotation protocol ("none" draws nothing).
        augmentation: scale, translate and jitter settings, each None when off.
        rng: the stream of this rank and epoch; draws are made in the order they apply (scale, rotation,
            translation, jitter), so a given stream always gives the same clouds.

    Returns:
        (B, N, 3) float32 augmented clouds.
    """
    count, _, dim = points.shape
    clouds = points.astype(np.float64)
    if augmentation.scale is not None:
        scale = augmentation.scale
        clouds = clouds * rng.uniform(scale.low, scale.high, (count, 1, dim if scale.per_axis else 1))
    if rotation != "none":
        clouds = clouds @ random_rotations(rotation, count, rng).transpose(0, 2, 1)
    if augmentation.translate is not None:
        clouds = clouds + rng.uniform(augmentation.translate.low, augmentation.translate.high, (count, 1, dim))
    if augmentation.jitter is not None:
        jitter = augmentation.jitter
        clouds = clouds + np.clip(jitter.sigma * rng.standard_normal(clouds.shape), -jitter.clip, jitter.clip)
    return clouds.astype(np.float32)


def invariant_to_training_draws(
    invariances: frozenset[str], rotation: RotationProtocol, augmentation: AugmentationSpec
) -> bool:
    """Whether every training draw is a transform a representation declaring `invariances` ignores.

    Then its output on the canonical clouds is its output on every draw, and can be computed once.
    The protocols draw proper rotations (det +1): "rotation" covers them whether it declares SO(d) or
    O(d). A scale is covered only when it is one factor per cloud and "scale" is declared; a per-axis
    scale is no similarity, and jitter is no group element, so neither ever is. A canonicalising
    representation is invariant only away from ties (near-equal eigenvalues, a near-zero sign
    statistic: `repr/small_eigengap_frac`, `repr/ambiguous_sign_frac`); there, a frame computed once
    keeps one of the frames the draws could give.

    Args:
        invariances: the representation's declared symmetries (representations/base.py).
        rotation: the train rotation protocol.
        augmentation: scale, translate and jitter settings.
    """
    scale = augmentation.scale
    return (
        (rotation == "none" or "rotation" in invariances)
        and (scale is None or (not scale.per_axis and "scale" in invariances))
        and (augmentation.translate is None or "translation" in invariances)
        and augmentation.jitter is None
    )
