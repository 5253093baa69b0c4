"""Greedy TSP decoding throughput of the attention model, against a naive decoder, side by side in one process.

    python -m geosweep.bench.tsp_decoding [--num-cities 50] [--batch 512] [--repeats 3]

The model is the paper's size (3 layers, 128 dims, 8 heads), in eval mode
without autograd, on CPU with torch using every core. Its decoder projects the
node embeddings into glimpse keys/values, logit keys and the graph context once
per instance. The naive baseline runs the same encoder and the same per-step
computation but re-projects all of those at every step, as a decoder written
without that cache would; both must give the same tours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from geosweep.backbones.attention_model import AttentionModel
from geosweep.registry import BACKBONES


def greedy(model: AttentionModel, frames: torch.Tensor) -> torch.Tensor:
    """The model's own greedy decoding: projections once per instance."""
    return model(frames, decode="greedy")[0]


def greedy_reprojecting(model: AttentionModel, frames: torch.Tensor) -> torch.Tensor:
    """Naive greedy decoding: every step re-projects every node's keys, values and logit keys."""
    nodes = model.encoder(model.init_embed(frames)).mean(dim=1)
    batch, num_nodes = nodes.shape[:2]
    tour = torch.empty(batch, 0, dtype=torch.int64)
    visited = torch.zeros(batch, num_nodes, dtype=torch.bool)
    for _ in range(num_nodes):
        projected = model.decoder.project(nodes, model.head)
        choice = model.decoder.log_probs(nodes, projected, model.head, tour, visited).argmax(dim=-1, keepdim=True)
        tour = torch.cat([tour, choice], dim=1)
        visited = visited.scatter(1, choice, True)
    return tour


def main() -> None:
    """The command line: greedy decoding throughput of both decoders, which must agree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-cities", type=int, default=50)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = BACKBONES.build("attention_model", {}, in_channels=2).eval()
    frames = torch.rand(args.batch, 1, args.num_cities, 2)  # uniform cities in the unit square, F = 1
    decoders = {"cached projections": greedy, "naive (re-projects every step)": greedy_reprojecting}

    seconds: dict[str, list[float]] = {name: [] for name in decoders}
    with torch.no_grad():
        tours = {name: decode(model, frames) for name, decode in decoders.items()}  # warm-up, and the same answer
        if not torch.equal(*tours.values()):
            raise AssertionError("the naive decoder disagrees with the model's tours")
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            for name, decode in decoders.items():
                started = time.perf_counter()
                decode(model, frames)
                seconds[name].append(time.perf_counter() - started)

    print(
        f"greedy decoding, TSP{args.num_cities}, batch {args.batch}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}:"
    )
    rates = {name: args.batch / statistics.median(times) for name, times in seconds.items()}
    for name, rate in rates.items():
        print(f"  {name:>32}: {rate:8.0f} instances/s")
    ratio = rates["cached projections"] / rates["naive (re-projects every step)"]
    print(f"speed-up of cached projections over the naive decoder: {ratio:.2f}x")


if __name__ == "__main__":
    main()
