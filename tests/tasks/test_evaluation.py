"""Overall and mean per-class accuracy: hand-counted values, and the same numbers from two gloo ranks as from one."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geosweep.localhost import free_port
from geosweep.tasks.evaluation import accuracies

NUM_CLASSES = 4
# Class 0: 4 of 4 right; class 1: 1 of 2; class 2: 0 of 1; class 3 never occurs but is predicted once.
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 2, 1])
PREDICTED = torch.tensor([0, 0, 0, 0, 0, 1, 3, 1])
EXPECTED = {"acc": 6 / 8, "mean_class_acc": (4 / 4 + 2 / 3 + 0 / 1) / 3}  # over the classes present


class FirstPointLogits(torch.nn.Module):
    """Logits read off each cloud's first point: the tests choose every prediction. Counts the clouds it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        self.seen += len(points)
        return points[:, 0, :NUM_CLASSES]


def clouds_predicting(predicted: torch.Tensor) -> torch.Tensor:
    """(M, 3, NUM_CLASSES) clouds whose first point is the one-hot of each prediction."""
    points = torch.zeros(len(predicted), 3, NUM_CLASSES)
    points[torch.arange(len(predicted)), 0, predicted] = 1.0
    return points


def score(
    inputs: torch.Tensor, labels: torch.Tensor, rank: int = 0, world_size: int = 1, model: torch.nn.Module | None = None
) -> dict[str, float]:
    model = model or FirstPointLogits()
    return accuracies(model, inputs, labels, NUM_CLASSES, rank, world_size, torch.device("cpu"))


def test_overall_and_mean_per_class_accuracy_by_hand():
    scores = score(clouds_predicting(PREDICTED), LABELS)
    assert scores == pytest.approx(EXPECTED)
    # Balanced classes make the two agree; an imbalanced split lets the overall one hide a failed class.
    assert scores["acc"] > scores["mean_class_acc"]


def test_sharding_without_a_process_group_is_refused():
    with pytest.raises(RuntimeError, match="world_size 2, but no process group is initialised"):
        score(clouds_predicting(PREDICTED), LABELS, rank=0, world_size=2)


def ranks_score(rank: int, world_size: int, port: int, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        inputs, model = clouds_predicting(PREDICTED), FirstPointLogits()
        results[rank] = {
            "sharded": score(inputs, LABELS, rank, world_size, model),
            "seen": model.seen,
            "one_sample": score(inputs[:1], LABELS[:1], rank, world_size),  # rank 1's shard is empty
            # Rank 0 alone, as final_metrics scores: no collective, so rank 1 is not waited for.
            "rank_0_alone": score(inputs, LABELS, 0, 1) if rank == 0 else None,
        }
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_scoring_disjoint_shards_get_the_single_process_numbers():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(ranks_score, args=(2, free_port(), results), nprocs=2, join=True)
        results = dict(results)
    for rank in (0, 1):
        assert results[rank]["sharded"] == pytest.approx(EXPECTED)
        assert results[rank]["seen"] == len(LABELS) // 2  # each rank its own half, not the whole split
        assert results[rank]["one_sample"] == pytest.approx({"acc": 1.0, "mean_class_acc": 1.0})
    assert results[0]["rank_0_alone"] == pytest.approx(EXPECTED)
