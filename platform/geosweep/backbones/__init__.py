"""Backbones: permutation-invariant networks from per-point features to outputs."""

from geosweep.backbones import deepsets, dgcnn, pointnet, set_transformer  # noqa: F401  (each registers its name)
