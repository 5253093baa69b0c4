"""Datasets: generated (`shapes`) or read from a path the user gives."""

from geosweep.data.splits import PointCloudSplits, Split, apply_rotation_protocols
from geosweep.data import shapes  # noqa: E402,F401  (registers "shapes")
from geosweep.data import modelnet40  # noqa: E402,F401  (registers "modelnet40")
from geosweep.data import tsp  # noqa: E402,F401  (registers "tsp")

__all__ = ["PointCloudSplits", "Split", "apply_rotation_protocols"]
