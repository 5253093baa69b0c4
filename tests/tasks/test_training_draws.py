"""Training clouds are drawn afresh every epoch; validation and test sets stay fixed; frames are computed once
only where the representation ignores every training draw (the cache still serves every deterministic one)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from clouds import generic_clouds
from geosweep import random_streams
from geosweep.backbones.pointnet import PointNet
from geosweep.config import AugmentationSpec, RunConfig, parse_run_config
from geosweep.data.augmentation import augment, invariant_to_training_draws
from geosweep.data.rotations import rotate
from geosweep.model import InvariantModel
from geosweep.registry import REPRESENTATIONS
from geosweep.tasks.classification import Classification
from geosweep.tasks.inputs import encode


def run_config(cache: Path, representation: str, train: str = "z", **augmentation) -> RunConfig:
    return parse_run_config({
        "dataset": {"name": "shapes", "kwargs": {"num_points": 32, "train_per_class": 2, "val_per_class": 1,
                                                 "test_per_class": 1},
                    "rotation": {"train": train, "test": "so3"}, "augmentation": augmentation},
        "representation": {"name": representation},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [8], "head_widths": [8]}},
        "epochs": 2, "batch_size": 8, "scaling": {"num_workers": 1}, "seed": 0, "cache": {"dir": str(cache)},
    })  # fmt: skip  # one line per config section


def set_up(config: RunConfig) -> Classification:
    task = Classification()
    task.setup(config, rank=0, world_size=1, device=torch.device("cpu"))
    return task


def epoch_clouds(task: Classification, epoch: int) -> dict[int, np.ndarray]:
    """What this epoch's batches feed the model for each training cloud, by the cloud's index in the split."""
    task.sampler.set_epoch(epoch)
    order = list(task.sampler)  # the order batches() walks
    fed = torch.cat([batch.inputs[task.inputs.train_name] for batch in task.batches(epoch)])
    assert len(fed) == len(order) == 24  # 12 classes x 2, three whole batches
    return dict(zip(order, fed.numpy(), strict=True))


def distances(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_raw_sees_a_fresh_rotation_of_each_training_cloud_every_epoch_and_fixed_evaluation_sets(tmp_path):
    task = set_up(run_config(tmp_path, "raw"))
    assert (task.inputs.train_name, task.inputs.eval_name) == ("points", "frames")
    first, second = epoch_clouds(task, 1), epoch_clouds(task, 2)
    for index, canonical in enumerate(task.canonical.train.points):
        assert not np.allclose(first[index], second[index], atol=1e-3), index  # a new draw each epoch
        for drawn in (first[index], second[index]):  # each a z rotation of the canonical cloud
            np.testing.assert_allclose(drawn[:, 2], canonical[:, 2], atol=1e-5)
            np.testing.assert_allclose(distances(drawn), distances(canonical), atol=1e-4)
    for index, cloud in epoch_clouds(task, 1).items():  # the epoch's stream again (a resumed run): the same draws
        np.testing.assert_array_equal(cloud, first[index])

    # Validation and test: one fixed draw each (val by the train protocol), whatever the epoch or the worker.
    val = rotate(task.canonical.val.points, "z", random_streams.generator("rotation.val", 0))
    np.testing.assert_allclose(task.inputs.val[:, 0].numpy(), val - val.mean(axis=1, keepdims=True), atol=1e-6)
    again = set_up(run_config(tmp_path, "raw"))
    assert torch.equal(again.inputs.val, task.inputs.val) and torch.equal(again.inputs.test, task.inputs.test)
    # Raw's rotated training clouds are never cached: only the fixed validation and test frames are.
    assert task.inputs.metrics["cache/misses"] == 2 and again.inputs.metrics["cache/hits"] == 2
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_tinv_mds_frames_are_cached_once_from_the_canonical_clouds_under_per_epoch_rotation(tmp_path):
    task = set_up(run_config(tmp_path, "tinv_mds", train="z"))
    assert (task.inputs.train_name, task.inputs.eval_name) == ("frames", "frames")
    assert (task.inputs.metrics["cache/misses"], task.inputs.metrics["cache/hits"]) == (3, 0)
    representation = REPRESENTATIONS.build("tinv_mds", {})
    np.testing.assert_array_equal(task.inputs.train.numpy(), encode(representation, task.canonical.train.points))
    first, second = epoch_clouds(task, 1), epoch_clouds(task, 2)
    for index in first:  # the frames every rotation would give: nothing to draw
        np.testing.assert_array_equal(first[index], second[index])

    assert set_up(run_config(tmp_path, "tinv_mds", train="z")).inputs.metrics["cache/hits"] == 3
    # Another train protocol shares the training frames; its validation set is another fixed draw.
    so3 = set_up(run_config(tmp_path, "tinv_mds", train="so3")).inputs.metrics
    assert (so3["cache/hits"], so3["cache/misses"]) == (2, 1)


def test_a_draw_the_representation_does_not_ignore_is_made_every_epoch_and_not_cached(tmp_path):
    task = set_up(run_config(tmp_path, "tinv_mds", jitter={"sigma": 0.01, "clip": 0.05}))
    assert (task.inputs.train_name, task.inputs.eval_name) == ("points", "frames")
    assert task.inputs.metrics["cache/misses"] == 2  # validation and test only
    first, second = epoch_clouds(task, 1), epoch_clouds(task, 2)
    assert not np.allclose(first[0], second[0], atol=1e-3)


@pytest.mark.parametrize("protocol", ["z", "so3"])
@pytest.mark.parametrize("name", REPRESENTATIONS.names())
def test_cached_frames_give_the_model_what_every_draw_would(name, protocol):
    """The claim behind caching, for every registered deterministic representation, on generic clouds."""
    representation = REPRESENTATIONS.build(name, {})
    if not representation.deterministic:
        pytest.skip(f"{name} runs in the model every step: nothing is cached")
    torch.manual_seed(0)
    model = InvariantModel(representation, PointNet(3, 4, point_widths=(16, 16), head_widths=(16,))).eval()
    canonical = generic_clouds(3, torch.float32, b=8).numpy()
    drawn = augment(canonical, protocol, AugmentationSpec(), np.random.default_rng(0))
    with torch.no_grad():
        cached = model(frames=torch.from_numpy(encode(representation, canonical)))
        fresh = model(points=torch.from_numpy(drawn))
    error = (cached - fresh).abs().max() / max(1.0, cached.abs().max())
    if invariant_to_training_draws(representation.invariances, protocol, AugmentationSpec()):
        assert error < 1e-4
    else:  # raw: the rotation changes its input, so its training clouds must be drawn, not cached
        assert error > 1e-2
