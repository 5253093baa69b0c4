"""Hypernetworks that generate a backbone's target Linear layers per sample: `standard` and `mip`.

The wrapper is itself a backbone with its target's contract ((B, N, C) ->
(B, out_dim), or the attention model's frames (B, F, N, C) -> tours). Each forward it
computes a conditioning vector, maps it through an MLP h to the parameters of
every nn.Linear inside the target modules (e.g. the classifier `head`), and
runs the backbone with those layers applying per-sample weights by einsum:
batched, never a loop over samples.

Conditions:
- `spectrum`: the normalised covariance eigenvalues of the sample's input
  (in [0, 1], summing to 1). A function of the invariant input alone, so an
  invariant representation keeps the whole model invariant.
- `hyperparam`: an amortised scalar hyperparameter (`amortised`), set by the
  training loop per batch (sampled from its range) and per grid value at the end.
- `scale`: a declared magnitude feature, the sample's RMS radius about its centroid,
  which spans orders of magnitude when the data do. mip maps its logarithm from the
  declared `scale_range` to [0, 1], clamped (a radius outside saturates, never wraps).

`standard` feeds the raw condition to h and uses h's output as the weights.
`mip` (Ortiz et al., ICLR 2024) scales the condition to [0, 1], encodes each
value as [cos(pi g / 2), sin(pi g / 2)] (constant norm), and predicts only a
residual: theta = theta_0 + h(E(g)), theta_0 learned and initialised like the
target layer; h has Kaiming fan-out weights and zero biases.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from torch import nn

from geosweep.registry import HYPERNETS

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU}
Activation = Literal["relu", "leaky_relu", "gelu", "silu"]


class Amortised(BaseModel):
    """A scalar hyperparameter that one trial covers as a whole range instead of one value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["label_smoothing"]
    low: Annotated[float, Field(ge=0, lt=1)]
    high: Annotated[float, Field(ge=0, lt=1)]
    grid: tuple[float, ...]  # values evaluated (and logged) after training

    @model_validator(mode="after")
    def _ordered(self) -> Amortised:
        if not self.low < self.high:
            raise ValueError(f"amortised.low ({self.low}) must be below amortised.high ({self.high})")
        outside = [v for v in self.grid if not self.low <= v <= self.high]
        if outside:  # the mip encoding would wrap around outside [low, high]
            raise ValueError(f"amortised.grid values {outside} lie outside [{self.low}, {self.high}]")
        return self

    def to_unit(self, value: torch.Tensor) -> torch.Tensor:
        """`value` mapped from [low, high] to [0, 1] (MIP's encoding needs [0, 1])."""
        return (value - self.low) / (self.high - self.low)


class GeneratedLinear(nn.Module):
    """Replaces a target nn.Linear: applies the per-sample weight and bias its hypernetwork set."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight: torch.Tensor | None = None  # (B, out, in), set before every forward
        self.bias: torch.Tensor | None = None  # (B, out)

    @property
    def num_params(self) -> int:
        """How many hypernetwork outputs this layer takes: weight then bias."""
        return self.out_features * (self.in_features + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ..., in) -> (B, ..., out), sample b using weight[b]."""
        out = torch.einsum("b...i,boi->b...o", x, self.weight)
        return out + self.bias.view(len(self.bias), *([1] * (x.ndim - 2)), self.out_features)


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (B, C): covariance eigenvalues, descending, normalised to sum 1 (uniform if all zero)."""
    centred = x.double() - x.double().mean(dim=1, keepdim=True)
    values = torch.linalg.eigvalsh(centred.mT @ centred).flip(-1).clamp_min(0)
    total = values.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(values, 1.0 / values.shape[-1])
    return torch.where(total > 0, values / total.clamp_min(1e-300), uniform).to(x.dtype)


def rms_radius(x: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (B, 1): root mean squared distance of the points from their centroid."""
    return (x - x.mean(dim=1, keepdim=True)).square().sum(dim=-1).mean(dim=1, keepdim=True).sqrt()


class Hypernetwork(nn.Module):
    """A backbone whose target Linear layers are generated per sample from a condition (`standard` or `mip`).

    Args:
        target: the backbone whose layers are generated (set by the platform).
        in_channels: channels per point of the backbone's input (set by the platform).
        targets: backbone modules whose Linear layers are generated (every backbone has `head`).
        hidden: hidden widths of the hypernetwork MLP h.
        activation: h's nonlinearity.
        condition: `spectrum` (per-sample invariant descriptor), `hyperparam` (amortised) or `scale`
            (per-sample RMS radius: a magnitude feature).
        amortised: the hyperparameter, its range and evaluation grid (condition `hyperparam` only).
        scale_range: (low, high) radii that mip maps, on a log scale, to [0, 1] (condition `scale`, mip only).
    """

    mip: ClassVar[bool]  # the parametrization: MIP's encoding and residual theta_0, or the standard one

    def __init__(
        self,
        target: nn.Module,
        in_channels: int,
        targets: Annotated[tuple[str, ...], Field(min_length=1)] = ("head",),
        hidden: tuple[PositiveInt, ...] = (64, 64),
        activation: Activation = "relu",
        condition: Literal["spectrum", "hyperparam", "scale"] = "spectrum",
        amortised: Amortised | None = None,
        scale_range: tuple[PositiveFloat, PositiveFloat] | None = None,
    ) -> None:
        super().__init__()
        if condition == "hyperparam" and amortised is None:
            raise ValueError("hypernet condition 'hyperparam' needs `amortised` (name, low, high, grid)")
        if condition == "scale" and self.mip and scale_range is None:
            raise ValueError("hypernet mip with condition 'scale' needs `scale_range` (low, high radius)")
        if scale_range is not None and not scale_range[0] < scale_range[1]:
            raise ValueError(f"hypernet scale_range {scale_range}: low must be below high")
        self.log_scale_range = torch.tensor(scale_range).log() if scale_range else None
        self.backbone, self.condition = target, condition
        # No condition changes under an orthogonal map of the input (the covariance spectrum and the radius
        # keep it, a scalar ignores it), so the wrapper keeps its target's claim (`Model.invariances` reads it).
        self.invariances = getattr(target, "invariances", frozenset())
        self.amortised = amortised if condition == "hyperparam" else None  # what the model samples per batch
        self.generated, originals = replace_linears(target, targets)
        self.hyperparam: torch.Tensor | None = None  # set by the loop when condition = hyperparam
        self.diagnostics: dict[str, torch.Tensor] = {}  # from the last forward, detached

        raw_dim = in_channels if condition == "spectrum" else 1
        sizes = [2 * raw_dim if self.mip else raw_dim, *hidden, sum(g.num_params for g in self.generated.values())]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.h = nn.Sequential(*layers)
        self.theta0 = None
        if self.mip:
            for layer in self.h:
                if isinstance(layer, nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(layer.bias)
            # theta_0 starts as the target layers' own initial parameters and is learned from there.
            self.theta0 = nn.Parameter(torch.cat([flat_params(linear) for linear in originals]))

    def set_hyperparam(self, value: float) -> None:
        """The amortised hyperparameter's value for the following forward passes."""
        if self.amortised and not self.amortised.low <= value <= self.amortised.high:
            raise ValueError(f"{self.amortised.name}={value} outside [{self.amortised.low}, {self.amortised.high}]")
        self.hyperparam = torch.tensor(float(value))

    def conditioning(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) or (B, F, N, C) input -> (B, k) condition: spectrum, amortised value or radius (mip: in [0, 1])."""
        # Frames differ by an orthogonal map, which changes neither spectrum nor radius: one frame suffices.
        cloud = x[:, 0] if x.ndim == 4 else x
        if self.condition == "spectrum":
            return spectrum(cloud)
        if self.condition == "scale":
            if not self.mip:
                return rms_radius(cloud)
            low, high = self.log_scale_range.to(x)
            return ((rms_radius(cloud).clamp_min(1e-30).log() - low) / (high - low)).clamp(0, 1)
        if self.hyperparam is None:
            raise RuntimeError("hypernet condition 'hyperparam': call set_hyperparam(value) before forward")
        value = self.amortised.to_unit(self.hyperparam) if self.mip else self.hyperparam
        return value.to(x).expand(len(x), 1)

    def encoded(self, x: torch.Tensor) -> torch.Tensor:
        """(B, k) input of h: the raw condition (standard) or its constant-norm encoding (mip, norm sqrt(k))."""
        gamma = self.conditioning(x)
        if self.mip:
            gamma = torch.cat([torch.cos(math.pi * gamma / 2), torch.sin(math.pi * gamma / 2)], dim=-1)
        return gamma

    def forward(self, x: torch.Tensor, **kwargs: Any) -> Any:
        """The backbone on `x` (and `kwargs`, e.g. decode="sample"), its target layers generated per sample."""
        gamma = self.encoded(x)
        delta = self.h(gamma)  # (B, P)
        theta = self.theta0 + delta if self.mip else delta
        self.diagnostics = {"hypernet/output_norm_over_input_norm": (delta.norm(dim=1) / gamma.norm(dim=1)).mean()}
        start = 0
        for name, module in self.generated.items():
            chunk = slice(start, start + module.num_params)
            start = chunk.stop
            module.weight = theta[:, chunk][:, : -module.out_features].unflatten(1, (module.out_features, -1))
            module.bias = theta[:, chunk][:, -module.out_features :]
            if self.mip:
                relative = delta[:, chunk].norm(dim=1) / self.theta0[chunk].norm()
                self.diagnostics[f"hypernet/{name}/delta_over_theta0"] = relative.mean()
        self.diagnostics = {k: v.detach() for k, v in self.diagnostics.items()}
        return self.backbone(x, **kwargs)


def replace_linears(
    backbone: nn.Module, targets: tuple[str, ...]
) -> tuple[dict[str, GeneratedLinear], list[nn.Linear]]:
    """Swap every nn.Linear inside the named modules for a GeneratedLinear.

    Returns:
        The replacements by qualified name, and the Linear layers they replaced (same order).
    """
    modules = dict(backbone.named_modules())
    missing = [t for t in targets if t not in modules]
    if missing:
        top = ", ".join(n for n in modules if n and "." not in n)
        raise ValueError(f"hypernet targets {missing} are not modules of the backbone (top-level modules: {top})")
    generated: dict[str, GeneratedLinear] = {}
    originals: list[nn.Linear] = []
    for target in targets:
        linears = [(f"{target}.{n}" if n else target, m) for n, m in modules[target].named_modules()]
        for qualified, linear in linears:
            if isinstance(linear, nn.Linear):
                parent, _, child = qualified.rpartition(".")
                replacement = GeneratedLinear(linear)
                setattr(backbone.get_submodule(parent) if parent else backbone, child, replacement)
                generated[qualified] = replacement
                originals.append(linear)
    if not generated:
        raise ValueError(f"hypernet targets {list(targets)} contain no nn.Linear layer to generate")
    return generated, originals


def flat_params(linear: nn.Linear) -> torch.Tensor:
    """A Linear's weight (row-major) then bias, as one vector: GeneratedLinear's layout."""
    bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
    return torch.cat([linear.weight.detach().flatten(), bias.detach()])


@HYPERNETS.register("standard")
class StandardHypernetwork(Hypernetwork):
    """h maps the raw condition straight to the generated layers' parameters."""

    mip = False


@HYPERNETS.register("mip")
class MIPHypernetwork(Hypernetwork):
    """Magnitude Invariant Parametrization: constant-norm encoding of the condition, residual theta_0 + h(E(g))."""

    mip = True
