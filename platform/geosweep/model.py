"""The one model a run trains, checkpoints and saves: representation -> backbone (+ hypernetwork).

`InvariantModel` classifies point clouds, `TourModel` decodes TSP tours. Both
expose the amortised hyperparameter their backbone is conditioned on, if any,
so the training loop samples it without knowing which hypernetwork is inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS

if TYPE_CHECKING:
    from geosweep.config import RunConfig
    from geosweep.hypernets.hypernetwork import Amortised

EVAL_BATCH = 256  # instances per forward when scoring whole splits


class Model(nn.Module):
    """A representation and the backbone that runs on its frames.

    Args:
        representation: points -> (B, F, N, c) frames.
        backbone: the backbone, possibly a hypernetwork around one.
    """

    output_names: ClassVar[tuple[str, ...]]  # what forward returns, in order (the logged model's signature)

    def __init__(self, representation: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        self.representation = representation
        self.backbone = backbone

    @property
    def invariances(self) -> frozenset[str]:
        """What the whole model guarantees, named as `Representation.invariances`; what its certificate checks.

        The representation's own invariances, plus the backbone's under the groups the
        representation hands on by turning its frames with the input (`equivariances`): raw
        coordinates turn with a rotation and a Vector Neuron backbone cannot see it, so raw +
        vn_dgcnn is rotation invariant. Backbones without an `invariances` attribute claim nothing.
        """
        handed_on = self.representation.equivariances & getattr(self.backbone, "invariances", frozenset())
        return frozenset(self.representation.invariances | handed_on)

    @property
    def amortised(self) -> Amortised | None:
        """The hyperparameter the backbone covers as a range (a hypernetwork conditioned on it), or None."""
        return getattr(self.backbone, "amortised", None)

    def set_hyperparams(self, values: dict[str, float]) -> None:
        """The amortised hyperparameter's value for the following forward passes, by name."""
        self.backbone.set_hyperparam(values[self.amortised.name])

    def sample_hyperparams(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the amortised hyperparameter from its range and set it; {} when there is none.

        Returns:
            {name: value}, which the task's loss takes by name (e.g. `label_smoothing`).
        """
        if self.amortised is None:
            return {}
        values = {self.amortised.name: float(rng.uniform(self.amortised.low, self.amortised.high))}
        self.set_hyperparams(values)
        return values

    def diagnostics(self) -> dict[str, float]:
        """What the backbone measured in its last forward (a hypernetwork's relative parameter change)."""
        return {key: value.item() for key, value in getattr(self.backbone, "diagnostics", {}).items()}


class InvariantModel(Model):
    """Folds the representation's frame axis into the batch, runs the backbone once, averages.

    With F = 1 (raw, tinv_mds) this is the backbone on one canonical frame;
    with F > 1 (frame averaging) the mean over frames is exactly invariant.
    """

    output_names = ("logits",)

    def forward(self, points: torch.Tensor | None = None, *, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, d) points, or the (B, F, N, c) frames a deterministic representation made of them -> (B, out_dim).

        Frames computed once (and cached) enter here, so training on them and on points is one model.
        """
        if (points is None) == (frames is None):
            raise ValueError("InvariantModel: pass exactly one of points and frames")
        if frames is None:
            frames = self.representation(points)
        batch, num_frames = frames.shape[:2]
        outputs = self.backbone(frames.flatten(0, 1))  # (B * F, out_dim)
        return outputs.unflatten(0, (batch, num_frames)).mean(dim=1)


class TourModel(Model):
    """Cities -> representation frames -> a tour decoder (which averages its node embeddings over frames)."""

    output_names = ("tours", "log_likelihood")

    def forward(self, cities: torch.Tensor, decode: str = "greedy") -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n, 2) cities -> (B, n) tours and (B,) log-likelihoods of those tours."""
        return self.backbone(self.representation(cities), decode=decode)

    @torch.no_grad()
    def greedy_tours(self, cities: torch.Tensor) -> torch.Tensor:
        """Greedy tours of any number of instances, in eval mode and in batches; the mode is restored."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        tours = [self(cities[i : i + EVAL_BATCH].to(device))[0] for i in range(0, len(cities), EVAL_BATCH)]
        self.train(was_training)
        return torch.cat(tours).cpu()


def build_model(config: RunConfig, dim: int, out_dim: int = 0) -> InvariantModel | TourModel:
    """Construct the registered components named in `config`.

    Args:
        config: the run config naming representation, backbone and hypernetwork.
        dim: spatial dimension of the input points (3 for clouds, 2 for TSP).
        out_dim: size of the task's output (the number of classes; unused by tour backbones).
    """
    representation = REPRESENTATIONS.build(config.representation.name, config.representation.kwargs)
    in_channels = representation.out_channels(dim)
    backbone = BACKBONES.build(config.backbone.name, config.backbone.kwargs, in_channels=in_channels, out_dim=out_dim)
    backbone = HYPERNETS.build(config.hypernet.name, config.hypernet.kwargs, target=backbone, in_channels=in_channels)
    model_class = TourModel if BACKBONES.kind(config.backbone.name) == "tour" else InvariantModel
    return model_class(representation, backbone)
