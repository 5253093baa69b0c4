"""The representation axis: importing this package registers every representation."""

from geosweep.representations import mds, raw
from geosweep.representations.base import Representation

__all__ = ["Representation", "mds", "raw"]
