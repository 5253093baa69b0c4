"""Every backbone x representation x hypernet combination, built from the registries, tested automatically."""

import itertools

import pytest
import torch

from geosweep.config import parse_run_config
from geosweep.invariance import assert_invariant, groups_of, invariance_error
from geosweep.model import build_model
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS
from tiny_sizes import TINY_BACKBONES, TINY_HYPERNET, TINY_REPRESENTATIONS

# InvariantModel averages (B, out_dim) outputs: the classification backbones' contract, not the attention model's.
CLASSIFIERS = [name for name in BACKBONES.names() if BACKBONES.kind(name) == "classification"]
COMBINATIONS = list(itertools.product(CLASSIFIERS, REPRESENTATIONS.names(), HYPERNETS.names()))
OUT_DIM = 4


def tiny_model(backbone: str, representation: str, hypernet: str) -> torch.nn.Module:
    config = parse_run_config(
        {
            "dataset": {"name": "shapes"},
            "representation": {"name": representation, "kwargs": TINY_REPRESENTATIONS.get(representation, {})},
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

    # the whole model keeps what it claims (its representation's, and its backbone's where the representation
    # hands the group on), and every backbone pools over points
    model.eval()
    with torch.no_grad():
        assert_invariant(model, points, ("permutation", *groups_of(model.invariances)))


def test_accuracy_of_an_empty_split_is_nan_not_an_error():
    from geosweep.tasks.evaluation import accuracies

    model = tiny_model("pointnet", "raw", "none").float()
    empty = accuracies(
        model, torch.zeros(0, 8, 3), torch.zeros(0, dtype=torch.long), OUT_DIM, 0, 1, torch.device("cpu")
    )
    assert all(value != value for value in empty.values()) and len(empty) == 2  # NaN, overall and per class


@pytest.mark.parametrize("representation", ["tinv_mds", "fa"])
def test_precomputed_frames_give_the_same_outputs_as_points(representation):
    model = tiny_model("pointnet", representation, "mip").eval()
    points = torch.randn(4, 16, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(frames=model.representation(points)), model(points))
    with pytest.raises(ValueError, match="exactly one of points and frames"):
        model(points, frames=model.representation(points))


ROTATION = {"translation", "rotation", "permutation"}
ORTHOGONAL = ROTATION | {"reflection"}


@pytest.mark.parametrize(
    "backbone, representation, hypernet, claim",
    [
        ("dgcnn", "raw", "none", {"translation", "permutation"}),  # raw claims no rotation, dgcnn adds none
        ("vn_dgcnn", "raw", "none", ORTHOGONAL),  # raw turns with the input; VN-DGCNN cannot see it
        ("vn_dgcnn", "raw", "mip", ORTHOGONAL),  # a hypernetwork keeps its target's claim
        ("vn_pointnet", "raw_aug", "none", ROTATION),  # VN-PointNet's cross product: rotations only
        ("vn_dgcnn", "tinv_mds", "none", ORTHOGONAL),  # already invariant
        ("dgcnn", "learned_canon", "none", ROTATION),
        ("vn_dgcnn", "learned_canon", "standard", ROTATION),  # learned_canon's output does not turn: nothing added
    ],
)
def test_a_model_claims_what_its_pair_guarantees(backbone, representation, hypernet, claim):
    assert tiny_model(backbone, representation, hypernet).invariances == claim


def test_the_model_claim_is_not_vacuous():
    # raw + dgcnn claims no rotation and has none; raw + vn_dgcnn claims it (checked for every pair above).
    points = generic_clouds()
    with torch.no_grad():
        assert invariance_error(tiny_model("dgcnn", "raw", "none").eval(), points, "SO(d)") > 1e-3
