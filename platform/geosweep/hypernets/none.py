"""The control on the hypernetwork axis: the backbone keeps its own parameters."""

from torch import nn

from geosweep.registry import HYPERNETS


@HYPERNETS.register("none")
def none(target: nn.Module) -> nn.Module:
    """Return the target network unchanged."""
    return target
