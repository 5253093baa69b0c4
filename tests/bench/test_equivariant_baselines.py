"""The equivariant baselines' plain loop, and what it shows: VN-DGCNN keeps its accuracy under SO(3), DGCNN does not."""

import pytest

from geosweep.bench.equivariant_baselines import ENTRIES, interval, samples_per_sec, train_and_score
from geosweep.data.shapes import shapes

# Small enough for a few CPU seconds each, large enough that the margins below are wide (chance is 1/12).
DGCNN = {"name": "dgcnn", "kwargs": {"widths": [16, 16], "k": 8, "emb_dims": 32, "head_widths": [32], "dropout": 0.0}}
VN_DGCNN = {"name": "vn_dgcnn", "kwargs": {"widths": [6, 6], "k": 8, "emb_dims": 12, "head_widths": [32], "dropout": 0}}


@pytest.fixture(scope="module")
def data():
    return shapes(seed=0, num_points=128, train_per_class=16, test_per_class=8)


def test_vn_dgcnn_trained_on_z_keeps_its_accuracy_under_so3_and_dgcnn_on_raw_does_not(data):
    """Trained on z-rotated shapes, tested on z and on SO(3) rotations of the same 96 test clouds.

    Measured at this size (seeds 0-3): VN-DGCNN 0.44-0.51 under both; DGCNN on raw 0.78-0.85 under z,
    0.20-0.30 under SO(3). The assertions keep wide margins from those.
    """
    vn = train_and_score({"name": "raw"}, VN_DGCNN, data, epochs=15, seed=0, batch_size=16, lr=0.003)
    plain = train_and_score({"name": "raw"}, DGCNN, data, epochs=15, seed=0, batch_size=16, lr=0.003)
    one_cloud = 1 / len(data.test.labels)
    assert abs(vn.acc_so3 - vn.acc_z) <= one_cloud  # invariant: the same predictions, up to a tie
    assert vn.acc_so3 >= 0.3
    assert plain.acc_z - plain.acc_so3 >= 0.3
    assert vn.acc_so3 >= plain.acc_so3 + 0.1
    # The certificate a trial logs says the same without labels.
    assert vn.rotation_logit_diff < 1e-4 < 1e-2 < plain.rotation_logit_diff


def test_every_entry_builds_and_is_timed(data):
    throughput = samples_per_sec(list(ENTRIES), data, batch_size=4)
    assert set(throughput) == set(ENTRIES) and all(value > 0 for value in throughput.values())


def test_interval_is_the_t_interval_of_the_mean():
    assert interval([0.5]) == "0.500"
    # mean 0.6, sample std 0.1, t(0.975, 2) = 4.303: half-width 4.303 * 0.1 / sqrt(3) = 0.248
    assert interval([0.5, 0.6, 0.7]) == "0.600 +- 0.248"
