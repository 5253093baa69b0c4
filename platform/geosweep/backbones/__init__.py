"""Backbones: permutation-invariant networks from per-point features to outputs.

Each names its classifier `head`: the default target of the hypernetworks.
Most map (B, N, C) -> (B, out_dim); a class attribute `kind` declares another
contract (the attention model's "tour": frames -> tours), read by `BACKBONES.kind`.
"""

from geosweep.backbones import attention_model, deepsets, dgcnn, pointnet, set_transformer  # noqa: F401  (each registers its name)
