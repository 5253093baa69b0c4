"""The models runs train: representation -> backbone (+ hypernetwork), for clouds and for tours."""

from __future__ import annotations

import torch
from torch import nn

from geosweep.config import RunConfig
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS

EVAL_BATCH = 256


class InvariantModel(nn.Module):
    """Folds the representation's frame axis into the batch, runs the backbone once, averages.

    With F = 1 (raw, tinv_mds) this is the backbone on one canonical frame;
    with F > 1 (frame averaging) the mean over frames is exactly invariant.
    """

    def __init__(self, representation: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        self.representation = representation
        self.backbone = backbone

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, d) points -> (B, out_dim) outputs."""
        frames = self.representation(points)  # (B, F, N, c)
        batch, num_frames = frames.shape[:2]
        outputs = self.backbone(frames.flatten(0, 1))  # (B * F, out_dim)
        return outputs.unflatten(0, (batch, num_frames)).mean(dim=1)


class TourModel(nn.Module):
    """Cities -> representation frames -> a tour decoder (which averages its node embeddings over frames)."""

    def __init__(self, representation: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        self.representation = representation
        self.backbone = backbone

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


class PrecomputedFrames(nn.Module):
    """Stands in for a deterministic representation whose frames were computed (and cached) up front."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames


def build_model(config: RunConfig, dim: int, out_dim: int = 0) -> InvariantModel | TourModel:
    """Construct the registered components named in `config`.

    Args:
        dim: spatial dimension of the input points (3 for clouds, 2 for TSP).
        out_dim: size of the task's output (the number of classes; unused by tour backbones).
    """
    representation = REPRESENTATIONS.build(config.representation.name, config.representation.kwargs)
    in_channels = representation.out_channels(dim)
    backbone = BACKBONES.build(config.backbone.name, config.backbone.kwargs, in_channels=in_channels, out_dim=out_dim)
    model_class = TourModel if getattr(backbone, "kind", None) == "tour" else InvariantModel
    backbone = HYPERNETS.build(config.hypernet.name, config.hypernet.kwargs, target=backbone, in_channels=in_channels)
    return model_class(representation, backbone)
