"""standard and mip hypernetworks: generated layers, MIP's residual and magnitude invariance, conditions."""

import copy

import pytest
import torch

import geosweep.config  # noqa: F401  (fills the registries)
from geosweep.hypernets.hypernetwork import Amortised, rms_radius, spectrum
from geosweep.registry import BACKBONES, HYPERNETS
from tiny_sizes import TINY_BACKBONES

AMORTISED = {"name": "label_smoothing", "low": 0.0, "high": 0.3, "grid": [0.0, 0.1, 0.3]}


def tiny_pointnet():
    torch.manual_seed(0)
    return BACKBONES.build("pointnet", TINY_BACKBONES["pointnet"], in_channels=3, out_dim=5)


def wrap(name, backbone, **kwargs):
    return HYPERNETS.build(name, {"hidden": (8,), **kwargs}, target=backbone, in_channels=3)


def test_mip_with_zero_output_weights_is_the_target_network():
    backbone = tiny_pointnet()
    reference = copy.deepcopy(backbone).eval()
    hyper = wrap("mip", backbone).eval()
    torch.nn.init.zeros_(hyper.h[-1].weight)  # h's biases start at zero, so delta theta = 0
    points = torch.randn(6, 32, 3)
    torch.testing.assert_close(hyper(points), reference(points))


def test_mip_weights_do_not_grow_with_the_condition_while_standard_ones_do():
    torch.manual_seed(0)
    standard = wrap("standard", tiny_pointnet(), condition="hyperparam", amortised=AMORTISED)
    mip = wrap("mip", tiny_pointnet(), condition="hyperparam", amortised=AMORTISED)
    # standard: raw input, a positively homogeneous h -> |theta| grows with |gamma|.
    standard_norms = [standard.h(torch.tensor([[c]])).norm().item() for c in (1.0, 10.0, 100.0)]
    assert standard_norms[2] > 10 * standard_norms[0]
    # mip: constant-norm encoding plus residual -> |theta| is about |theta_0| for every value in range.
    mip_norms = []
    for value in (0.0, 0.15, 0.3):
        mip.set_hyperparam(value)
        mip(torch.randn(2, 16, 3))
        mip_norms.append(torch.cat([g.weight.flatten(1) for g in mip.generated.values()], 1).norm(dim=1).mean())
    assert max(mip_norms) < 1.5 * min(mip_norms)


def generated_weight_norms(hyper, points):
    hyper.eval()(points)
    return torch.cat([g.weight.flatten(1) for g in hyper.generated.values()], 1).norm(dim=1)


def test_mip_is_invariant_to_the_magnitude_of_a_condition_spanning_orders_of_magnitude():
    # One cloud at radii 1e-3 .. 1e3: the `scale` condition (its RMS radius) spans six orders of magnitude.
    torch.manual_seed(1)
    cloud = torch.randn(1, 32, 3)
    cloud = cloud / rms_radius(cloud)[..., None]  # radius 1, so the copies have radii 1e-3, 1e-2, ..., 1e3
    clouds = torch.cat([cloud * 10.0**e for e in range(-3, 4)])
    standard = wrap("standard", tiny_pointnet(), condition="scale")
    mip = wrap("mip", tiny_pointnet(), condition="scale", scale_range=(0.01, 100.0))
    # MIP's guarantee: h's input has constant norm whatever the condition's magnitude (sqrt(1) here)...
    torch.testing.assert_close(mip.encoded(clouds).norm(dim=1), torch.ones(7))
    torch.testing.assert_close(standard.encoded(clouds)[:, 0], rms_radius(clouds)[:, 0])
    # ...so the generated weights stay near theta_0, while standard's grow with the radius (h is near homogeneous).
    standard_norms, mip_norms = generated_weight_norms(standard, clouds), generated_weight_norms(mip, clouds)
    assert (standard_norms.diff() > 0).all() and standard_norms[-1] > 100 * standard_norms[3]
    assert mip_norms.max() < 1.5 * mip_norms.min()
    # Radii outside scale_range saturate at its ends instead of wrapping round the encoding.
    torch.testing.assert_close(mip_norms[:2], mip_norms[1].expand(2))
    torch.testing.assert_close(mip_norms[-2:], mip_norms[-2].expand(2))
    assert mip.encoded(clouds)[0, 0] == 1 and mip.encoded(clouds)[-1, 1] == 1


def test_spectrum_condition_generates_per_sample_weights_batched():
    hyper = wrap("mip", tiny_pointnet()).eval()
    points = torch.randn(5, 32, 3) * torch.tensor([3.0, 2.0, 1.0])
    points[0] *= torch.tensor([1.0, 0.1, 0.1])  # a different shape -> a different spectrum -> different weights
    one_by_one = torch.cat([hyper(p[None]) for p in points])
    batched = hyper(points)
    torch.testing.assert_close(batched, one_by_one)
    weight = next(iter(hyper.generated.values())).weight  # from the batched call
    assert weight.shape[0] == 5 and not torch.allclose(weight[0], weight[1])


def test_spectrum_is_normalised_and_invariant():
    points = torch.randn(4, 50, 3, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    values = spectrum(points)
    torch.testing.assert_close(values.sum(-1), torch.ones(4, dtype=torch.float64))
    assert (values >= 0).all() and (values <= 1).all()
    torch.testing.assert_close(spectrum(2.5 * points @ q.T + 1.0), values)
    torch.testing.assert_close(spectrum(torch.zeros(1, 5, 3)), torch.full((1, 3), 1 / 3))


def test_diagnostics_report_relative_change_per_generated_tensor():
    hyper = wrap("mip", tiny_pointnet())
    hyper(torch.randn(3, 16, 3))
    keys = set(hyper.diagnostics)
    assert "hypernet/output_norm_over_input_norm" in keys
    assert {f"hypernet/{name}/delta_over_theta0" for name in hyper.generated} <= keys


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"targets": ("nope",)},
            r"targets \['nope'\] are not modules of the backbone \(top-level modules: point_mlp, head\)",
        ),
        ({"condition": "hyperparam"}, "needs `amortised`"),
        ({"condition": "scale"}, "needs `scale_range`"),
        ({"condition": "scale", "scale_range": (2.0, 1.0)}, r"scale_range \(2.0, 1.0\): low must be below high"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wrap("mip", tiny_pointnet(), **kwargs)


def test_amortised_range_is_enforced():
    with pytest.raises(ValueError, match=r"grid values \[0.5\] lie outside \[0.0, 0.3\]"):
        Amortised(**{**AMORTISED, "grid": [0.1, 0.5]})
    with pytest.raises(ValueError, match="amortised"):
        HYPERNETS.validate_kwargs("mip", {"amortised": {**AMORTISED, "low": 0.5}})
    hyper = wrap("mip", tiny_pointnet(), condition="hyperparam", amortised=AMORTISED)
    with pytest.raises(ValueError, match=r"label_smoothing=0.9 outside \[0.0, 0.3\]"):
        hyper.set_hyperparam(0.9)


def test_a_named_layer_can_be_the_only_target():
    hyper = wrap("mip", tiny_pointnet(), targets=("head.0",))
    assert list(hyper.generated) == ["head.0"]
    others = [m for name, m in hyper.backbone.named_modules() if isinstance(m, torch.nn.Linear)]
    assert others, "the other Linear layers keep their own parameters"
    assert hyper(torch.randn(3, 16, 3)).shape == (3, 5)
