"""Every registered backbone: shapes, gradients, permutation invariance, batch independence, kwargs checks."""

from __future__ import annotations

import inspect

import pytest
import torch

import geosweep.backbones  # noqa: F401  (registers every backbone)
from geosweep.invariance import assert_invariant, groups_of, invariance_error
from geosweep.registry import BACKBONES
from tiny_sizes import TINY_BACKBONES

# Tiny sizes keep CI cheap; a new backbone adds its line in tiny_sizes.py (enforced below).
TINY = TINY_BACKBONES
ALL_NAMES = BACKBONES.names()
# The (B, N, C) -> (B, out_dim) contract tested here is the classification backbones'; another kind
# (the attention model's "tour") has its own test file.
NAMES = [name for name in ALL_NAMES if BACKBONES.kind(name) == "classification"]
# Backbones that claim invariance under maps of their input's channels as vectors (Vector Neurons).
DECLARING = [name for name in NAMES if getattr(BACKBONES.get(name), "invariances", frozenset())]
OUT_DIM = 5


def build(name: str, in_channels: int = 3, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return BACKBONES.build(name, {**TINY.get(name, {}), **overrides}, in_channels=in_channels, out_dim=OUT_DIM)


def eval_float64(model: torch.nn.Module, in_channels: int = 3) -> torch.nn.Module:
    """Float64 in eval mode, with batch-norm running statistics moved off their initial 0 / 1."""
    model = model.double().train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 16, in_channels, dtype=torch.float64) * 2 + 1)
    return model.eval()


def test_every_backbone_has_a_tiny_size():
    assert sorted(TINY) == ALL_NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels", [2, 3])
@pytest.mark.parametrize("num_points", [8, 33])
def test_forward_shape(name, in_channels, num_points):
    model = build(name, in_channels)
    out = model(torch.randn(4, num_points, in_channels))
    assert out.shape == (4, OUT_DIM)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name):
    model = build(name).train()
    out = model(torch.randn(4, 12, 3))
    (out * torch.randn_like(out)).sum().backward()
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient for {param_name}"
            assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient for {param_name}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_points", [8, 33])
def test_permutation_invariant(name, num_points):
    model = eval_float64(build(name))
    x = torch.randn(3, num_points, 3, dtype=torch.float64)
    perm = torch.randperm(num_points)
    with torch.no_grad():
        torch.testing.assert_close(model(x[:, perm]), model(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_batch_independent_in_eval(name):
    model = eval_float64(build(name))
    x = torch.randn(5, 20, 3, dtype=torch.float64)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
        other = model(torch.cat([x[:1], torch.randn(4, 20, 3, dtype=torch.float64)]))
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(other[0], together[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_points", [1, 8, 33])
def test_dgcnn_k_larger_than_num_points(num_points):
    model = build("dgcnn", k=50)
    out = model.eval()(torch.randn(2, num_points, 3))
    assert out.shape == (2, OUT_DIM)
    assert torch.isfinite(out).all()


def test_the_vector_neuron_backbones_declare_invariances():
    assert {"vn_dgcnn", "vn_pointnet"} <= set(DECLARING)


@pytest.mark.parametrize("name", DECLARING)
@pytest.mark.parametrize("in_channels", [2, 3])
@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_declared_invariances_hold(name, in_channels, pooling):
    """Each group a backbone declares leaves its output unchanged: float64, tolerance 1e-5."""
    model = eval_float64(build(name, in_channels, pooling=pooling), in_channels)
    x = torch.randn(3, 24, in_channels, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        errors = assert_invariant(model, x - x.mean(dim=1, keepdim=True), groups_of(model.invariances))
    assert "SO(d)" in errors or "O(d)" in errors


def test_vn_dgcnn_is_invariant_under_reflections_and_vn_pointnet_is_not():
    """VN-DGCNN has no cross product (O(3)); VN-PointNet's first layer has one (SO(3): chirality is kept)."""
    x = torch.randn(3, 24, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert build("vn_dgcnn").invariances == {"rotation", "reflection"}
    assert build("vn_pointnet").invariances == {"rotation"}
    assert build("vn_pointnet", in_channels=2).invariances == {"rotation", "reflection"}  # no cross product in 2-D
    with torch.no_grad():
        assert invariance_error(eval_float64(build("vn_pointnet")), x, "O(d)") > 1e-6
        assert invariance_error(eval_float64(build("vn_pointnet")), x, "SO(d)") < 1e-12


@pytest.mark.parametrize("name", DECLARING)
def test_vector_neuron_backbones_need_centred_input(name):
    # Not translation invariant: a representation must centre (every registered one does).
    x = torch.randn(3, 24, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert invariance_error(eval_float64(build(name)), x, "translation") > 1e-6


@pytest.mark.parametrize("name", ["pointnet", "dgcnn"])
def test_plain_backbones_are_not_rotation_invariant(name):
    # The negative control: the claim above is not something every backbone would pass.
    x = torch.randn(3, 24, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert not getattr(BACKBONES.get(name), "invariances", frozenset())
    with torch.no_grad():
        assert invariance_error(eval_float64(build(name)), x, "SO(d)") > 1e-3


@pytest.mark.parametrize("name", DECLARING)
@pytest.mark.parametrize("num_points", [1, 8])
def test_vector_neuron_k_larger_than_num_points(name, num_points):
    out = build(name, k=50).eval()(torch.randn(2, num_points, 3))
    assert out.shape == (2, OUT_DIM)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_unknown_kwarg_rejected(name):
    with pytest.raises(ValueError, match="unknown argument 'widthz'"):
        BACKBONES.validate_kwargs(name, {"widthz": 3})


@pytest.mark.parametrize("name", [n for n in NAMES if "dropout" in inspect.signature(BACKBONES.get(n)).parameters])
@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_dropout_out_of_range_rejected(name, dropout):
    with pytest.raises(ValueError, match=f"backbone '{name}': argument 'dropout'"):
        BACKBONES.validate_kwargs(name, {"dropout": dropout})


@pytest.mark.parametrize(
    "name, kwargs, argument",
    [
        ("dgcnn", {"k": 0}, "k"),
        ("dgcnn", {"widths": ()}, "widths"),
        ("dgcnn", {"widths": (8, 0)}, "widths.1"),
        ("dgcnn", {"emb_dims": 0}, "emb_dims"),
        ("set_transformer", {"heads": 0}, "heads"),
        ("set_transformer", {"dim": "wide"}, "dim"),
        ("set_transformer", {"depth": -1}, "depth"),
        ("deepsets", {"pool": "median"}, "pool"),
        ("deepsets", {"point_widths": ()}, "point_widths"),
        ("pointnet", {"head_widths": (-1,)}, "head_widths.0"),
        ("vn_dgcnn", {"pooling": "median"}, "pooling"),
        ("vn_dgcnn", {"emb_dims": 2}, "emb_dims"),
        ("vn_pointnet", {"point_widths": ()}, "point_widths"),
        ("vn_pointnet", {"k": 0}, "k"),
    ],
)
def test_bad_kwargs_name_the_argument(name, kwargs, argument):
    with pytest.raises(ValueError, match=f"argument '{argument}'"):
        BACKBONES.validate_kwargs(name, kwargs)


def test_set_transformer_dim_must_divide_by_heads():
    with pytest.raises(ValueError, match="'dim' .* divisible by 'heads'"):
        BACKBONES.build("set_transformer", {"dim": 10, "heads": 4}, in_channels=3, out_dim=OUT_DIM)


@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_deepsets_pools_are_permutation_invariant(pool):
    model = eval_float64(build("deepsets", pool=pool))
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x.flip(1)), model(x), rtol=0, atol=1e-6)
