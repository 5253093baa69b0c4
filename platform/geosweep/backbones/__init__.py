"""Backbones: permutation-invariant networks from per-point features to outputs.

Each names its classifier `head`: the default target of the hypernetworks.
"""

from geosweep.backbones import deepsets, dgcnn, pointnet, set_transformer  # noqa: F401  (each registers its name)
