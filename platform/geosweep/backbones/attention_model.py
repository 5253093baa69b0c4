"""Attention Model for the TSP (Kool, van Hoof & Welling, ICLR 2019): a transformer encoder, a pointer decoder.

Unlike the classification backbones ((B, N, C) -> (B, out_dim)) this one maps a
representation's frames (B, F, N, c) to a tour and its log-likelihood, for
REINFORCE. The encoder runs on every frame and the node embeddings are averaged
over frames before decoding: the frames of a transformed instance are the same
set, so the averaged embeddings, and hence the tours, are exactly invariant.

Every nn.Linear acts on tensors whose first axis is the batch, so a
hypernetwork can swap it for a per-sample generated layer.

Under bf16 autocast (`precision: bf16`) the encoder and the glimpse run in
bf16, but the pointer's logits, their log-softmax and the tour's
log-likelihood stay fp32, as in Kool et al.'s fp32 training: in bf16,
10 * tanh(.) takes steps of up to 0.0625 and a step's probabilities no
longer sum to 1 to fp32 accuracy.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from geosweep.backbones.layers import PointwiseBatchNorm
from geosweep.registry import BACKBONES

Normalization = Literal["batch", "layer"]
Decode = Literal["greedy", "sample"]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(..., N, h) -> (..., heads, N, h / heads)."""
    return x.unflatten(-1, (num_heads, -1)).transpose(-3, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(..., heads, N, d) -> (..., N, heads * d)."""
    return x.transpose(-3, -2).flatten(-2)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention over the node axis of (..., N, h) tensors, any leading axes."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.project_qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=False)
        self.project_out = nn.Linear(embed_dim, embed_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, h) node embeddings -> (..., N, h), each node attending to all N."""
        query, key, value = (split_heads(t, self.num_heads) for t in self.project_qkv(x).chunk(3, dim=-1))
        # The kernel has no parameters, so folding the leading axes is safe for per-sample layers; its fast CPU
        # path takes 4-D inputs only (5-D ones fall back to a ~4x slower one).
        heads = F.scaled_dot_product_attention(query.flatten(0, -4), key.flatten(0, -4), value.flatten(0, -4))
        return self.project_out(merge_heads(heads.unflatten(0, query.shape[:-3])))


class EncoderLayer(nn.Module):
    """x = norm(x + MHA(x)); x = norm(x + FF(x)), as in the paper (post-norm)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_hidden: int, normalization: Normalization) -> None:
        super().__init__()
        norm = PointwiseBatchNorm if normalization == "batch" else nn.LayerNorm  # batch: over all leading axes
        self.attention = MultiHeadSelfAttention(embed_dim, num_heads)
        self.norm_attention = norm(embed_dim)
        self.feed_forward = nn.Sequential(nn.Linear(embed_dim, ff_hidden), nn.ReLU(), nn.Linear(ff_hidden, embed_dim))
        self.norm_feed_forward = norm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, h) -> (..., N, h)."""
        x = self.norm_attention(x + self.attention(x))
        return self.norm_feed_forward(x + self.feed_forward(x))


class PointerHead(nn.Module):
    """The decoder's output side: the glimpse's output projection and the pointer's logit keys."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.glimpse_out = nn.Linear(embed_dim, embed_dim, bias=False)
        self.logit_key = nn.Linear(embed_dim, embed_dim, bias=False)


class Projected(NamedTuple):
    """Per-instance projections of the node embeddings, computed once and reused at every step."""

    graph_context: torch.Tensor  # (B, 1, h)
    glimpse_key: torch.Tensor  # (B, heads, N, h / heads)
    glimpse_value: torch.Tensor  # (B, heads, N, h / heads)
    logit_key: torch.Tensor  # (B, N, h)


class Decoder(nn.Module):
    """Builds a tour node by node: context -> multi-head glimpse -> clipped single-head pointer."""

    def __init__(self, embed_dim: int, num_heads: int, tanh_clip: float) -> None:
        super().__init__()
        self.num_heads, self.tanh_clip = num_heads, tanh_clip
        self.project_graph = nn.Linear(embed_dim, embed_dim, bias=False)
        self.project_step = nn.Linear(2 * embed_dim, embed_dim, bias=False)  # [first node, last node]
        self.project_glimpse = nn.Linear(embed_dim, 2 * embed_dim, bias=False)  # glimpse keys and values
        # Stands in for [first, last] at step 0, when no node has been visited yet.
        self.placeholder = nn.Parameter(torch.empty(2 * embed_dim).uniform_(-1, 1))

    def project(self, nodes: torch.Tensor, head: PointerHead) -> Projected:
        """(B, N, h) node embeddings -> the step-independent projections."""
        key, value = self.project_glimpse(nodes).chunk(2, dim=-1)
        return Projected(
            self.project_graph(nodes.mean(dim=1, keepdim=True)),  # the graph embedding is the mean node
            split_heads(key, self.num_heads),
            split_heads(value, self.num_heads),
            head.logit_key(nodes),
        )

    def log_probs(
        self, nodes: torch.Tensor, projected: Projected, head: PointerHead, tour: torch.Tensor, visited: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities of the next node, (B, N); visited nodes get -inf.

        Args:
            nodes: (B, N, h) node embeddings.
            projected: the step-independent projections of `nodes`, from `project`.
            head: the pointer head that scores the nodes.
            tour: (B, t) nodes chosen so far (t = 0 at the first step).
            visited: (B, N) bool, True where the node is in `tour`.
        """
        if tour.shape[1] == 0:
            context = self.placeholder.expand(len(nodes), 1, -1)
        else:
            ends = tour[:, [0, -1], None].expand(-1, -1, nodes.shape[-1])  # first and last node
            context = nodes.gather(1, ends).flatten(1)[:, None]  # (B, 1, 2h)
        query = split_heads(projected.graph_context + self.project_step(context), self.num_heads)
        attend = ~visited[:, None, None, :]  # the glimpse, too, only looks at nodes still to visit
        glimpse = F.scaled_dot_product_attention(query, projected.glimpse_key, projected.glimpse_value, attend)
        glimpse = head.glimpse_out(merge_heads(glimpse))  # (B, 1, h)
        exact = torch.promote_types(glimpse.dtype, torch.float32)  # fp32 from here (fp64 stays), whatever autocast says
        with torch.autocast(glimpse.device.type, enabled=False):
            logits = (glimpse.to(exact) @ projected.logit_key.to(exact).mT).squeeze(1) / math.sqrt(glimpse.shape[-1])
            logits = self.tanh_clip * torch.tanh(logits)
            return logits.masked_fill(visited, -math.inf).log_softmax(dim=-1)

    def forward(self, nodes: torch.Tensor, head: PointerHead, decode: Decode) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, h) node embeddings -> tours (B, N) int64 and their fp32 log-likelihoods (B,)."""
        batch, num_nodes = nodes.shape[:2]
        projected = self.project(nodes, head)
        tour = torch.empty(batch, 0, dtype=torch.int64, device=nodes.device)
        visited = torch.zeros(batch, num_nodes, dtype=torch.bool, device=nodes.device)
        log_likelihood = torch.zeros(batch, device=nodes.device)  # fp32, like log_probs, under autocast too
        for _ in range(num_nodes):
            log_p = self.log_probs(nodes, projected, head, tour, visited)
            # Sampling never picks a visited node: its probability is exactly 0.
            choice = log_p.argmax(dim=-1, keepdim=True) if decode == "greedy" else torch.multinomial(log_p.exp(), 1)
            log_likelihood = log_likelihood + log_p.gather(1, choice).squeeze(1)
            tour = torch.cat([tour, choice], dim=1)
            visited = visited.scatter(1, choice, True)  # not in place: autograd keeps the earlier masks
        return tour, log_likelihood


@BACKBONES.register("attention_model", kind="tour")
class AttentionModel(nn.Module):
    """Attention Model for the TSP: frames (B, F, N, c) -> tours (B, N) and log-likelihoods (B,).

    Defaults are the paper's (3 layers, 128 dims, 8 heads, feed-forward 512,
    batch norm, logits clipped to +-10). Weights keep PyTorch's default
    initialisation, which for the Linear layers is the paper's
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)). A tiny CI size is e.g.
    `embed_dim=8, num_heads=2, num_layers=1, ff_hidden=16`.

    Args:
        in_channels: channels per city of the representation's frames (set by the platform).
        embed_dim: node embedding width h; must be divisible by `num_heads`.
        num_layers: encoder layers (attention + feed-forward).
        num_heads: heads of the encoder's attention and of the decoder's glimpse.
        ff_hidden: hidden width of the encoder's feed-forward sublayers.
        normalization: "batch" (over batch, frames and cities) or "layer".
        tanh_clip: C in the pointer's logits C * tanh(q.k / sqrt(h)).

    Raises:
        ValueError: `embed_dim` is not divisible by `num_heads`.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: Annotated[int, Field(ge=1)] = 128,
        num_layers: Annotated[int, Field(ge=0)] = 3,
        num_heads: Annotated[int, Field(ge=1)] = 8,
        ff_hidden: Annotated[int, Field(ge=1)] = 512,
        normalization: Normalization = "batch",
        tanh_clip: Annotated[float, Field(gt=0)] = 10.0,
    ) -> None:
        if embed_dim % num_heads:  # a constraint between two arguments, which a per-argument annotation cannot state
            raise ValueError(
                f"backbone 'attention_model': argument 'embed_dim' ({embed_dim}) "
                f"must be divisible by 'num_heads' ({num_heads})"
            )
        super().__init__()
        self.in_channels = in_channels
        self.init_embed = nn.Linear(in_channels, embed_dim)  # no positional encoding: the cities are a set
        self.encoder = nn.Sequential(
            *(EncoderLayer(embed_dim, num_heads, ff_hidden, normalization) for _ in range(num_layers))
        )
        self.decoder = Decoder(embed_dim, num_heads, tanh_clip)
        self.head = PointerHead(embed_dim)

    def forward(self, frames: torch.Tensor, decode: Decode = "greedy") -> tuple[torch.Tensor, torch.Tensor]:
        """Decode one tour per instance.

        Args:
            frames: (B, F, N, c) the representation's F frames of each instance's N cities.
            decode: "greedy" (argmax at every step) or "sample" (from the policy, e.g. for REINFORCE).

        Returns:
            tours (B, N) int64, a permutation of the cities per row, and log_likelihood (B,): the sum of
            the log-probabilities of the chosen nodes, differentiable w.r.t. the parameters.
        """
        if frames.ndim != 4 or frames.shape[-1] != self.in_channels:
            raise ValueError(
                f"attention_model: frames must be (batch, frames, cities, {self.in_channels}), "
                f"got {tuple(frames.shape)}"
            )
        if decode not in ("greedy", "sample"):
            raise ValueError(f"attention_model: decode must be 'greedy' or 'sample', got {decode!r}")
        # Keep the (B, F, N, h) layout: per-sample generated layers index the first axis by instance.
        nodes = self.encoder(self.init_embed(frames)).mean(dim=1)
        return self.decoder(nodes, self.head, decode)
