"""Backbones: permutation-invariant networks from per-point features to outputs."""

from geosweep.backbones import pointnet  # noqa: F401  (registers "pointnet")
