"""Raw coordinates, centred or as given: the negative control of the representation axis."""

from __future__ import annotations

from torch import Tensor

from geosweep.registry import REPRESENTATIONS
from geosweep.representations.base import Representation


@REPRESENTATIONS.register("raw")
class RawCoordinates(Representation):
    """The coordinates themselves, by default centred per cloud; one frame.

    Permutation-equivariant but deliberately NOT rotation invariant, so sweeps can show
    what an invariant representation buys. Centred (the point-cloud convention) it is
    also translation invariant; uncentred it is the Attention Model's own input (Kool et
    al. 2019: cities in the unit square), which a translation moves.

    Args:
        centre: subtract each cloud's centroid; False passes the coordinates through
            unchanged, and only permutation is declared.
    """

    invariances = frozenset({"translation", "permutation"})
    equivariances = frozenset({"rotation", "reflection"})  # centring (or not) commutes with every orthogonal map

    def __init__(self, centre: bool = True) -> None:
        super().__init__()
        self.centre = centre
        if not centre:
            self.invariances = frozenset({"permutation"})

    def forward(self, points: Tensor) -> Tensor:
        """Subtract each cloud's centroid, if `centre`.

        Args:
            points: (B, N, d) point clouds.

        Returns:
            (B, 1, N, d) coordinates, same dtype as `points`.
        """
        return (points - points.mean(dim=1, keepdim=True) if self.centre else points).unsqueeze(1)
