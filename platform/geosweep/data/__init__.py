"""Datasets: generated (`shapes`) or read from a path the user gives."""

from geosweep.data import (
    modelnet40,  # noqa: E402,F401  (registers "modelnet40")
    shapes,  # noqa: E402,F401  (registers "shapes")
    tsp,  # noqa: E402,F401  (registers "tsp")
)
from geosweep.data.splits import PointCloudSplits, Split, rotate_evaluation_splits

__all__ = ["PointCloudSplits", "Split", "rotate_evaluation_splits"]
