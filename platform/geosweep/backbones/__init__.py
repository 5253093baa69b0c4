"""Backbones: permutation-invariant networks from per-point features to outputs.

Each names its classifier `head`: the default target of the hypernetworks.
Each registers with the problem it is for: "classification" backbones map
(B, N, C) -> (B, out_dim); the "tour" one (the attention model) maps frames -> tours.
"""

from geosweep.backbones import attention_model, deepsets, dgcnn, pointnet, set_transformer  # noqa: F401  (each registers its name)
