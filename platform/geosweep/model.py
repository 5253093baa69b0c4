"""The model every run trains: representation -> backbone (+ hypernetwork) -> averaged over frames."""

from __future__ import annotations

import torch
from torch import nn

from geosweep.config import RunConfig
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS


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


class PrecomputedFrames(nn.Module):
    """Stands in for a deterministic representation whose frames were computed (and cached) up front."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames


def build_model(config: RunConfig, dim: int, out_dim: int) -> InvariantModel:
    """Construct the registered components named in `config`.

    Args:
        dim: spatial dimension of the input points (3 for clouds, 2 for TSP).
        out_dim: size of the task's output (e.g. the number of classes).
    """
    representation = REPRESENTATIONS.build(config.representation.name, config.representation.kwargs)
    in_channels = representation.out_channels(dim)
    backbone = BACKBONES.build(config.backbone.name, config.backbone.kwargs, in_channels=in_channels, out_dim=out_dim)
    backbone = HYPERNETS.build(config.hypernet.name, config.hypernet.kwargs, target=backbone, in_channels=in_channels)
    return InvariantModel(representation, backbone)
