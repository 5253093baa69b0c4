"""Every random stream a run draws from, named and derived from a seed in one place.

A stream is `SeedSequence(seed, spawn_key=(id(name), *keys))`. NumPy pads the
seed's words to the pool size before it appends the spawn key, so the name's
id always sits in the same word: two streams with different names differ for
any seeds they are given, and one name's streams differ by seed and keys.
That rules out what magic offsets allowed: a test set and a transformed copy
of it drawn from the same stream because two seeds happened to be equal.
"""

from __future__ import annotations

import zlib

import numpy as np

# Each name and the keys that tell its streams apart (drawn in this order).
STREAMS: dict[str, tuple[str, ...]] = {
    "shapes.cloud": ("split", "class"),  # one generated shape class in one split
    "shapes.order": ("split",),  # the shuffle of a generated split
    "modelnet40.subsample": ("split",),  # which of a release cloud's 2048 points are kept
    "modelnet40.val": (),  # the stratified validation subset of the train files
    "rotation.val": (),  # the one rotation of each validation cloud (the train protocol's)
    "rotation.test": (),  # the one rotation of each test cloud (the test protocol's)
    "robustness.rotation": ("protocol",),  # the test clouds rotated by each protocol at the end
    "tsp.val": (),  # the fixed validation instances
    "tsp.test": (),  # the fixed test instances
    # Streams a run draws from while it trains start afresh each epoch, keyed by it: a run resumed from
    # a checkpoint continues them exactly, with no generator state in the checkpoint.
    "tsp.train": ("rank", "epoch"),  # fresh training instances, per rank
    "augment.train": ("rank", "epoch"),  # each training cloud's rotation, scale, translation and jitter, per rank
    "tsp.random_tours": (),  # random tours: the floor the untrained policy is compared with
    "tsp.variant": ("variant",),  # the similarity applied to each test instance, per variant
    "tsp.baseline_eval": ("version",),  # the rollout baseline's held-out instances, per baseline version
    "amortised.hyperparam": ("rank", "epoch"),  # the hyperparameter value drawn for each batch
    "torch.rank": ("rank", "epoch"),  # torch's global generator on each rank (dropout, stochastic frames)
}


def stream_id(name: str) -> int:
    """The 32-bit word that names a stream in its seed sequence."""
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; named streams: {', '.join(STREAMS)}")
    return zlib.crc32(name.encode())


def seed_sequence(name: str, seed: int, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of stream `name` for `seed` and the stream's keys (non-negative ints).

    Raises:
        KeyError: `name` is not in STREAMS.
        ValueError: the keys do not match the names STREAMS gives.
    """
    expected = STREAMS.get(name)
    if expected is not None and len(keys) != len(expected):
        raise ValueError(f"random stream {name!r} takes keys {expected}, got {keys}")
    return np.random.SeedSequence(seed, spawn_key=(stream_id(name), *keys))


def generator(name: str, seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator on stream `name` (see `seed_sequence`)."""
    return np.random.default_rng(seed_sequence(name, seed, *keys))


def torch_seed(name: str, seed: int, *keys: int) -> int:
    """A 63-bit integer seed for torch, drawn from stream `name`."""
    high, low = seed_sequence(name, seed, *keys).generate_state(2)
    return (int(high) << 32 | int(low)) & (2**63 - 1)
