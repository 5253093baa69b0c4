"""Rotation protocols: which random rotations a split's clouds receive.

`none` keeps the canonical pose, `z` spins each cloud about the vertical axis
(the usual "upright" augmentation), `so3` draws Haar-uniform 3-D rotations.
Training under one protocol and testing under another (e.g. z/so3) measures
how much of a model's accuracy survives rotations it has not seen. Training
clouds get a fresh draw every epoch (augmentation.py), validation and test
clouds one fixed draw (splits.py).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from scipy.spatial.transform import Rotation

RotationProtocol = Literal["none", "z", "so3"]
ROTATION_PROTOCOLS: tuple[str, ...] = get_args(RotationProtocol)


def random_rotations(protocol: RotationProtocol, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw `count` proper rotations from a protocol.

    Args:
        protocol: "none" (identities), "z" (uniform angle about the z axis)
            or "so3" (Haar-uniform on SO(3)).
        count: number of rotations.
        rng: source of randomness; "none" draws nothing from it.

    Returns:
        (count, 3, 3) float64 rotation matrices.

    Raises:
        ValueError: for an unknown protocol.
    """
    if protocol == "none":
        return np.tile(np.eye(3), (count, 1, 1))
    if protocol == "z":
        angle = rng.uniform(0.0, 2.0 * np.pi, count)
        cos, sin, zero, one = np.cos(angle), np.sin(angle), np.zeros(count), np.ones(count)
        return np.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], axis=1).reshape(count, 3, 3)
    if protocol == "so3":
        return Rotation.random(count, rng=rng).as_matrix().reshape(count, 3, 3)
    raise ValueError(f"unknown rotation protocol {protocol!r}; valid choices: {', '.join(ROTATION_PROTOCOLS)}")


def rotate(points: np.ndarray, protocol: RotationProtocol, rng: np.random.Generator) -> np.ndarray:
    """Rotate each cloud about the origin by its own rotation drawn from `protocol`.

    Args:
        points: (M, N, 3) clouds.
        protocol: see `random_rotations`.
        rng: source of randomness.

    Returns:
        (M, N, 3) float32 rotated clouds, `points[m] @ R[m].T`.
    """
    rotations = random_rotations(protocol, points.shape[0], rng)
    return (points @ rotations.transpose(0, 2, 1)).astype(np.float32)
