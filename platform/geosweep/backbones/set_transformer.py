"""Set Transformer (Lee et al., 2019): self-attention blocks (SAB) + pooling by attention (PMA)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from geosweep.backbones.layers import mlp
from geosweep.registry import BACKBONES


class MAB(nn.Module):
    """Multihead attention block: H = LN(Q + Att(Q, K, K)); out = LN(H + rFF(H)). Equivariant in Q, invariant in K."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm_feed_forward = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(B, M, dim) queries attend over (B, N, dim) keys -> (B, M, dim)."""
        h = self.norm_attention(query + self.attention(query, keys, keys, need_weights=False)[0])
        return self.norm_feed_forward(h + self.feed_forward(h))


class PMA(nn.Module):
    """Pooling by multihead attention: one learned seed attends over the set -> (B, dim)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.seed = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.xavier_uniform_(self.seed)
        self.feed_forward = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())  # rFF(Z) in PMA(Z) = MAB(S, rFF(Z))
        self.block = MAB(dim, heads)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) set -> (B, dim)."""
        seed = self.seed.expand(z.shape[0], -1, -1)
        return self.block(seed, self.feed_forward(z)).squeeze(1)


@BACKBONES.register("set_transformer", kind="classification")
class SetTransformer(nn.Module):
    """Set Transformer: linear embedding, `depth` SABs, PMA with one seed, MLP head.

    Defaults follow the authors' point-cloud run (dim 256, 4 heads, 2 encoder
    blocks, dropout 0.5 before the output layer), with full SABs in place of
    their inducing-point ISABs: attention is O(N^2) in memory per head.
    A tiny CI size is e.g. `dim=8, heads=2, depth=1`.

    Args:
        in_channels: channels per point of the representation (set by the platform).
        out_dim: output size, the task's number of classes (set by the platform).
        dim: model width; must be divisible by `heads`.
        heads: attention heads.
        depth: number of self-attention blocks before pooling.
        head_widths: hidden widths of the MLP head (the paper uses none: one linear layer).
        dropout: dropout before the head and between its layers.

    Raises:
        ValueError: `dim` is not divisible by `heads`.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        dim: Annotated[int, Field(ge=1)] = 256,
        heads: Annotated[int, Field(ge=1)] = 4,
        depth: Annotated[int, Field(ge=0)] = 2,
        head_widths: tuple[PositiveInt, ...] = (),
        dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5,
    ) -> None:
        if dim % heads:  # a constraint between two arguments, which a per-argument annotation cannot state
            raise ValueError(
                f"backbone 'set_transformer': argument 'dim' ({dim}) must be divisible by 'heads' ({heads})"
            )
        super().__init__()
        self.embed = nn.Linear(in_channels, dim)  # no positional encoding: the input is a set
        self.blocks = nn.ModuleList(MAB(dim, heads) for _ in range(depth))
        self.pool = PMA(dim, heads)
        self.head = nn.Sequential(
            nn.Dropout(dropout), mlp([dim, *head_widths, out_dim], dropout, final_activation=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) per-point features -> (B, out_dim)."""
        x = self.embed(x)
        for block in self.blocks:
            x = block(x, x)  # SAB(X) = MAB(X, X)
        return self.head(self.pool(x))
