"""standard vs mip where the hypernetwork's condition spans orders of magnitude, in one process without Ray.

    python -m geosweep.bench.mip_magnitude [--seeds 5] [--epochs 20]

Shapes are scaled per cloud by 10**u, u uniform in [-2, 2] (a fresh draw every epoch), and a small
PointNet on raw coordinates has its head generated from the `scale` condition: the cloud's RMS radius,
which then spans four orders of magnitude. Both hypernetworks get the same data, budget and seeds; mip
maps the log radius from scale_range [0.01, 100] to [0, 1]; `none` (the plain PointNet) is the
reference. After training, the test split is scored at each scale 1e-2 ... 1e2. Printed per setting,
mean +- sample SD [95 % interval] over seeds: accuracy averaged over the scales and at the smallest and
largest, and the generated head's mean weight norm at the largest scale over that at the smallest
(how far the magnitude of the condition moves the magnitude of the generated weights).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from geosweep.bench.plain import as_tensors, train_in_process
from geosweep.comparison.groups import spread, spread_text
from geosweep.config import RunConfig, parse_run_config

SETTINGS = ("none", "standard", "mip")
TEST_EXPONENTS = (-2, -1, 0, 1, 2)  # test clouds scaled by 10**e
TRAIN_EXPONENTS = (-2.0, 2.0)  # training clouds scaled by 10**u, u uniform in this range


def config_for(hypernet: str, seed: int, epochs: int) -> RunConfig:
    """The benchmark's run: a small PointNet on raw shapes, its head generated from the cloud's radius."""
    return parse_run_config(
        {
            "dataset": {"name": "shapes", "kwargs": {"num_points": 128, "train_per_class": 48}},
            "representation": {"name": "raw"},
            "backbone": {
                "name": "pointnet",
                "kwargs": {"point_widths": [32, 64, 128], "head_widths": [64], "dropout": 0.1},
            },
            "hypernet": {
                "name": hypernet,
                "kwargs": {}
                if hypernet == "none"
                else {"hidden": [32], "condition": "scale", "scale_range": [0.01, 100.0]},
            },
            "optimizer": {"lr": 0.002},
            "epochs": epochs,
            "batch_size": 32,
            "seed": seed,
        }
    )


def random_magnitude(points: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each cloud scaled by 10**u, u uniform in TRAIN_EXPONENTS."""
    scales = 10.0 ** rng.uniform(*TRAIN_EXPONENTS, (len(points), 1, 1))
    return points * torch.from_numpy(scales).to(points.dtype)


def train_and_score(config: RunConfig) -> tuple[list[float], float | None]:
    """Train `config` on clouds of random magnitude, then score the test split at each test scale.

    Returns:
        Test accuracy per TEST_EXPONENTS, and the generated weights' mean norm at the largest scale over
        that at the smallest (None without a hypernetwork).
    """
    trained = train_in_process(config, transform=random_magnitude)
    model, task, data = trained.model, trained.task, trained.data
    model.eval()
    points, labels = as_tensors(data.test)
    accuracies, norms = [], []
    with torch.no_grad():
        for exponent in TEST_EXPONENTS:
            accuracies.append(task.num_correct(model(points * 10.0**exponent), labels).item() / len(labels))
            if config.hypernet.name != "none":
                generated = model.backbone.generated.values()  # as the last forward set them
                norms.append(torch.cat([g.weight.flatten(1) for g in generated], 1).norm(dim=1).mean().item())
    return accuracies, norms[-1] / norms[0] if norms else None


def main() -> None:
    """The command line: per setting, accuracy over the scales and the weight-norm ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared machine; both settings get the same

    for setting in SETTINGS:
        runs = [train_and_score(config_for(setting, seed, args.epochs)) for seed in range(args.seeds)]
        accuracy = np.array([run[0] for run in runs])  # (seeds, scales)
        ratios = [run[1] for run in runs if run[1] is not None]
        print(
            f"{setting:>8}: test acc over scales 1e-2..1e2 {spread_text(spread(accuracy.mean(1)), '.3f')}; "
            f"at 1e-2 {spread_text(spread(accuracy[:, 0]), '.3f')}; "
            f"at 1e2 {spread_text(spread(accuracy[:, -1]), '.3f')}; "
            f"|theta| at 1e2 / at 1e-2 {spread_text(spread(ratios), '.2f')}"
        )
        print(f"{'':>8}  per scale (mean over seeds): " + ", ".join(f"{a:.3f}" for a in accuracy.mean(0)))


if __name__ == "__main__":
    main()
