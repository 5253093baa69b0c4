"""Every backbone x representation x hypernet combination, built from the registries, tested automatically."""

import itertools

import pytest
import torch

from geosweep.config import parse_run_config
from geosweep.invariance import assert_invariant, groups_of
from geosweep.model import build_model
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS
from tiny_sizes import TINY_BACKBONES, TINY_HYPERNET

# InvariantModel averages (B, out_dim) outputs: the classification backbones' contract, not the attention model's.
CLASSIFIERS = [name for name in BACKBONES.names() if BACKBONES.kind(name) == "classification"]
COMBINATIONS = list(itertools.product(CLASSIFIERS, REPRESENTATIONS.names(), HYPERNETS.names()))
OUT_DIM = 4


def tiny_model(backbone: str, representation: str, hypernet: str) -> torch.nn.Module:
    config = parse_run_config(
        {
            "dataset": {"name": "shapes"},
            "representation": {"name": representation, "kwargs": {"k": 6} if representation == "geodesic_mds" else {}},
            "backbone": {"name": backbone, "kwargs": TINY_BACKBONES[backbone]},
            "hypernet": {"name": hypernet, "kwargs": {} if hypernet == "none" else TINY_HYPERNET},
            "epochs": 1,
        }
    )
    torch.manual_seed(0)
    return build_model(config, dim=3, out_dim=OUT_DIM).double()


def generic_clouds(batch: int = 3, points: int = 24) -> torch.Tensor:
    # Anisotropic and skewed, so eigengaps and third moments are far from degenerate.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, points, 3, generator=g, dtype=torch.float64) * torch.tensor(
        [4.0, 2.0, 1.0], dtype=torch.float64
    )
    return x + 0.3 * x[..., :1] ** 2


@pytest.mark.parametrize("backbone, representation, hypernet", COMBINATIONS)
def test_combination_trains_and_keeps_its_invariances(backbone, representation, hypernet):
    model = tiny_model(backbone, representation, hypernet)
    points = generic_clouds()

    # forward + backward: every trainable parameter gets a finite gradient
    model.train()
    out = model(points)
    assert out.shape == (3, OUT_DIM)
    out.square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name

    # the whole model keeps what its representation claims, and every backbone pools over points
    model.eval()
    with torch.no_grad():
        assert_invariant(model, points, ("permutation", *groups_of(model.representation.invariances)))


def test_accuracy_of_an_empty_split_is_nan_not_an_error():
    from geosweep.tasks.classification import Classification
    from geosweep.tasks.evaluation import accuracy

    model = tiny_model("pointnet", "raw", "none").float()
    empty = accuracy(
        model, Classification(), torch.zeros(0, 8, 3), torch.zeros(0, dtype=torch.long), 0, 1, torch.device("cpu")
    )
    assert empty != empty  # NaN


@pytest.mark.parametrize("representation", ["tinv_mds", "fa"])
def test_precomputed_frames_give_the_same_outputs_as_points(representation):
    model = tiny_model("pointnet", representation, "mip").eval()
    points = torch.randn(4, 16, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(frames=model.representation(points)), model(points))
    with pytest.raises(ValueError, match="exactly one of points and frames"):
        model(points, frames=model.representation(points))
