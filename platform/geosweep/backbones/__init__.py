"""Backbones: permutation-invariant networks from per-point features to outputs.

Each names its classifier `head`: the default target of the hypernetworks.
Each registers with the problem it is for: "classification" backbones map
(B, N, C) -> (B, out_dim); the "tour" one (the attention model) maps frames -> tours.
A backbone whose output cannot change under some group acting on its input's channels
as C-vectors declares it in `invariances` ("rotation", with "reflection" for all
orthogonal maps), as the Vector Neuron ones do; the others declare nothing.
"""

from geosweep.backbones import (  # noqa: F401  (each registers its name)
    attention_model,
    deepsets,
    dgcnn,
    pointnet,
    set_transformer,
    vn_dgcnn,
    vn_pointnet,
)
