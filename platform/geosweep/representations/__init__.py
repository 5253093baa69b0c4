"""The representation axis: importing this package registers every representation."""

from geosweep.representations import augment, canonicalization, frames, geodesic, mds, raw
from geosweep.representations.base import Representation, ambiguity_stats

__all__ = ["Representation", "ambiguity_stats", "augment", "canonicalization", "frames", "geodesic", "mds", "raw"]
