"""Golden losses: a silent numerical change anywhere in data, representation, backbone or hypernet shows here.

If a change is intended, re-record the values (run this file with GEOSWEEP_PRINT_GOLDEN=1) and say why in the commit.
"""

import os

import pytest
from torch.utils.data import DataLoader, TensorDataset

from geosweep.config import parse_run_config
from geosweep.data import apply_rotation_protocols
from geosweep.model import build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.train.classification import as_tensors
from geosweep.train.components import make_optimizer, seed_everything

GOLDEN = [2.81144642829895, 2.470791816711426, 2.4350781440734863]  # recorded on torch 2.13.0 CPU


def first_losses(steps: int = 3) -> list[float]:
    config = parse_run_config({
        "dataset": {"name": "shapes", "kwargs": {"num_points": 64, "train_per_class": 2},
                    "rotation": {"train": "z", "test": "so3"}},
        "representation": {"name": "tinv_mds"},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [16, 32], "head_widths": [16], "dropout": 0.0}},
        "hypernet": {"name": "mip", "kwargs": {"hidden": [8]}},
        "epochs": 1, "batch_size": 8, "seed": 0,
    })  # fmt: skip
    seed_everything(config.seed)
    data = DATASETS.build("shapes", config.dataset.kwargs, seed=config.seed)
    data = apply_rotation_protocols(data, "z", "so3", seed=config.seed)
    task = TASKS.build("classification", {})
    model = build_model(config, dim=3, out_dim=data.num_classes)
    optimizer = make_optimizer(config, model)
    loader = DataLoader(TensorDataset(*as_tensors(data.train)), batch_size=8, shuffle=False)
    losses = []
    for (points, labels), _ in zip(loader, range(steps)):
        loss = task.loss(model(points), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_first_three_losses_match_the_recording():
    losses = first_losses()
    if os.environ.get("GEOSWEEP_PRINT_GOLDEN"):
        print("GOLDEN =", losses)
    assert losses == pytest.approx(GOLDEN, rel=1e-5)
