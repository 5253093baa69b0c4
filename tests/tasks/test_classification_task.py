"""The classification task without Ray: its declared kind, its loss and the amortised value it takes by name."""

import pytest
import torch
from torch.nn import functional as F

from geosweep.registry import TASKS
from geosweep.tasks.classification import Classification


def test_declares_the_classification_kind_and_builds_from_its_own_signature():
    assert TASKS.kind("classification") == "classification"
    task = TASKS.build("classification", {"label_smoothing": "0.1"})
    assert isinstance(task, Classification) and task.label_smoothing == 0.1 and task.grad_clip is None
    with pytest.raises(ValueError, match=r"argument 'label_smoothing': Input should be less than 1"):
        TASKS.validate_kwargs("classification", {"label_smoothing": 1.0})


def test_loss_is_cross_entropy_in_float32_with_the_configured_smoothing():
    logits, labels = torch.randn(6, 4, dtype=torch.bfloat16), torch.tensor([0, 1, 2, 3, 0, 1])
    loss, metrics = Classification(label_smoothing=0.1).loss(logits, labels)
    assert loss.dtype == torch.float32 and metrics == {}
    assert loss == F.cross_entropy(logits.float(), labels, label_smoothing=0.1)


def test_an_amortised_label_smoothing_passed_by_name_overrides_the_configured_one():
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    loss, _ = Classification(label_smoothing=0.0).loss(logits, labels, label_smoothing=0.2)
    assert loss == F.cross_entropy(logits, labels, label_smoothing=0.2)


def test_num_correct_counts_argmax_hits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert Classification.num_correct(logits, torch.tensor([0, 1, 1])).item() == 2
