"""Vector Neuron layers: equivariant features that turn with the input, and the layer that makes them invariant."""

import pytest
import torch
from torch import nn

from clouds import generic_clouds
from geosweep.backbones.vn_layers import (
    VNBatchNorm,
    VNEdgeConv,
    VNInvariant,
    VNLinear,
    VNLinearLeakyReLU,
    VNMaxPool,
    edge_features,
)
from geosweep.invariance import assert_invariant, invariance_error

VECTOR_AXIS = -2  # features are (B, N, d, C)


def stack(pooling: str) -> nn.Module:
    """Every VN layer, in the order a backbone uses them: (B, N, d, 1) -> (B, N, d, 4)."""
    torch.manual_seed(0)
    return nn.Sequential(
        VNEdgeConv(1, 6, k=5, pooling=pooling, negative_slope=0.2),
        VNLinearLeakyReLU(6, 8, negative_slope=0.0),
        VNLinearLeakyReLU(8, 8, shared_direction=True),
        VNBatchNorm(8),
        VNLinear(8, 4),
    ).double()


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("training", [False, True])
def test_a_vn_layer_stack_is_equivariant(dim, pooling, training):
    """f(x Q^T) = f(x) Q^T for rotations and reflections, and f permutes with the points.

    In training mode too: batch norm's statistics are of norms, which no rotation changes.
    """
    layers = stack(pooling).train(training)
    points = generic_clouds(dim) - 3.0
    errors = assert_invariant(
        lambda x: layers(x.unsqueeze(-1)),
        points,
        ("O(d)", "permutation"),
        permutation="equivariant",
        vector_axis=VECTOR_AXIS,
    )
    assert set(errors) == {"O(d)", "permutation"}


def test_the_check_sees_a_layer_that_is_not_equivariant():
    # A bias vector fixes a direction in space: exactly what VN linear maps leave out.
    biased = nn.Linear(1, 4).double()
    with pytest.raises(AssertionError, match=r"not equivariant under SO\(d\)"):
        assert_invariant(lambda x: biased(x.unsqueeze(-1)), generic_clouds(3), "SO(d)", vector_axis=VECTOR_AXIS)


def test_the_cross_product_turns_with_rotations_but_not_with_reflections():
    points = generic_clouds(3) - 3.0
    edges = lambda x: edge_features(x.unsqueeze(-1), k=5, cross=True)  # noqa: E731
    assert_invariant(edges, points, "SO(d)", vector_axis=VECTOR_AXIS)
    with pytest.raises(AssertionError, match=r"not equivariant under O\(d\)"):
        assert_invariant(edges, points, "O(d)", vector_axis=VECTOR_AXIS)


@pytest.mark.parametrize("dim", [2, 3])
def test_the_invariant_layer_is_invariant(dim):
    torch.manual_seed(0)
    layers, invariant = stack("mean").eval(), VNInvariant(4, dim, negative_slope=0.2).double().eval()
    out = lambda x: invariant(layers(x.unsqueeze(-1)))  # noqa: E731
    points = generic_clouds(dim) - 3.0
    assert out(points).shape == (4, 64, 4, dim)
    assert_invariant(out, points, "O(d)")
    assert invariance_error(lambda x: layers(x.unsqueeze(-1)), points, "SO(d)") > 0.01  # its input was not


def test_max_pool_picks_whole_input_vectors_and_learns_nothing():
    # Its directions get no gradient through the argmax (as in Deng et al.), so they are a buffer:
    # DDP would stop on a parameter without a gradient.
    pool = VNMaxPool(3)
    assert list(pool.parameters()) == [] and pool.direction.shape == (3, 3)
    x = torch.randn(2, 7, 3, 3)  # (B, K, d, C)
    out = pool(x)
    for b in range(2):
        for c in range(3):
            assert any(torch.equal(out[b, :, c], x[b, j, :, c]) for j in range(7))


def test_batch_norm_and_the_nonlinearity_are_finite_at_zero_vectors():
    block = VNLinearLeakyReLU(2, 3).train()
    x = torch.zeros(4, 5, 3, 2, requires_grad=True)
    out = block(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in block.parameters())
