"""Raw centred coordinates: the negative control of the representation axis."""

from __future__ import annotations

from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import Representation


@REPRESENTATIONS.register("raw")
class RawCoordinates(Representation):
    """Per-cloud centred coordinates, one frame.

    Translation invariant and permutation-equivariant but deliberately NOT rotation
    invariant, so sweeps can show what an invariant representation buys.
    """

    invariances = frozenset({"translation", "permutation"})

    def forward(self, points: Tensor) -> Tensor:
        """Subtract each cloud's centroid.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) centred coordinates, same dtype as `points`.
        """
        return (points - points.mean(dim=1, keepdim=True)).unsqueeze(1)
