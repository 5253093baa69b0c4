"""Tiny kwargs per registered component, so registry-parametrised tests stay cheap on 2 cores."""

TINY_BACKBONES = {
    "pointnet": {"point_widths": (8, 16), "head_widths": (8,)},
    "dgcnn": {"widths": (8, 8), "k": 4, "emb_dims": 16, "head_widths": (8,)},
    "set_transformer": {"dim": 8, "heads": 2, "depth": 1},
    "deepsets": {"point_widths": (8, 16), "head_widths": (8,)},
    "attention_model": {"embed_dim": 8, "num_heads": 2, "num_layers": 1, "ff_hidden": 16},
    "vn_dgcnn": {"widths": (4, 4), "k": 4, "emb_dims": 8, "head_widths": (8,)},
    "vn_pointnet": {"point_widths": (4, 8), "k": 4, "emb_dims": 8, "head_widths": (8,)},
}
TINY_HYPERNET = {"hidden": (8,)}
# Representations whose defaults are costly; the others are tested at their defaults.
TINY_REPRESENTATIONS = {"geodesic_mds": {"k": 6}, "learned_canon": {"widths": (4, 4), "k": 4}}
