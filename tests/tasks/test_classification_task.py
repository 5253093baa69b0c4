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


def test_a_batch_larger_than_a_file_datasets_training_split_names_batch_size(tmp_path, tiny_config):
    import h5py
    import numpy as np

    from geosweep.config import parse_run_config

    # A 6-cloud release: its size is known only once read, so validation lets the config through.
    for split in ("train", "test"):
        with h5py.File(tmp_path / f"{split}.h5", "w") as h5:
            h5.create_dataset("data", data=np.random.default_rng(0).standard_normal((6, 16, 3)).astype(np.float32))
            h5.create_dataset("label", data=np.arange(6)[:, None] % 2)
        (tmp_path / f"{split}_files.txt").write_text(f"{split}.h5\n")
    dataset = {"name": "modelnet40", "kwargs": {"path": str(tmp_path), "num_points": 16, "val_fraction": 0.0}}
    config = parse_run_config({**tiny_config, "dataset": dataset, "batch_size": 4, "representation": {"name": "raw"}})
    with pytest.raises(ValueError, match=r"batch_size: 4 per worker x 2 workers is more than the 6 training clouds"):
        Classification().setup(config, rank=0, world_size=2, device=torch.device("cpu"))
