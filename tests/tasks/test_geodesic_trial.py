"""A geodesic_mds trial with disconnected kNN graphs goes on: it bridges and counts them, and scores every split.

Both accuracies (overall and mean per class) on val, test and under every rotation protocol.
"""

import math

import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geosweep.config import parse_run_config
from geosweep.tasks.classification import Classification


def knn_components(cloud: np.ndarray, k: int) -> int:
    """Connected components of the symmetric kNN graph, built apart from geodesic_mds (a k-d tree)."""
    _, neighbours = cKDTree(cloud).query(cloud, k=k + 1)  # each point's first hit is itself
    rows = np.repeat(np.arange(len(cloud)), k)
    graph = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, neighbours[:, 1:].ravel())), shape=(len(cloud),) * 2)
    return connected_components(graph, directed=False)[0]


def test_a_trial_bridges_disconnected_knn_graphs_logs_how_many_and_trains_on(tiny_config):
    # 2-NN graphs of 64-point shapes fall apart often: the trial must neither fail nor hide it.
    representation = {"name": "geodesic_mds", "kwargs": {"k": 2, "dims": 3}}
    config = parse_run_config({**tiny_config, "representation": representation})
    task = Classification()
    task.setup(config, rank=0, world_size=1, device=torch.device("cpu"))
    start = task.start_metrics()

    clouds = np.concatenate([task.canonical.train.points, task.canonical.val.points, task.canonical.test.points])
    broken = sum(knn_components(cloud.astype(np.float64), k=2) > 1 for cloud in clouds)
    assert 0 < broken < len(clouds)
    assert start["repr/knn_bridged_frac"] == broken / len(clouds)
    assert 0 < start["repr/median_rel_eigengap"] < 1

    for batch in task.batches(epoch=1):
        loss, _ = task.loss(task.model(**batch.inputs), batch.targets)
        assert math.isfinite(loss.item())
    scores = task.evaluate()
    assert set(scores) == set(Classification.epoch_metrics)
    assert all(0 <= value <= 1 for value in scores.values())
    final = task.final_metrics()
    for protocol in ("none", "z", "so3"):  # both accuracies under every rotation protocol
        assert 0 <= final[f"test_acc/{protocol}"] <= 1 and 0 <= final[f"test_mean_class_acc/{protocol}"] <= 1
