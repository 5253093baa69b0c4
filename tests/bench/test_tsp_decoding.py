"""The decoding benchmark's naive decoder is a fair baseline only if it gives the model's own tours."""

import subprocess
import sys

import torch

from geosweep.bench.tsp_decoding import greedy, greedy_reprojecting
from geosweep.registry import BACKBONES
from tiny_sizes import TINY_BACKBONES


def test_the_naive_decoder_gives_the_models_greedy_tours():
    torch.manual_seed(0)
    model = BACKBONES.build("attention_model", TINY_BACKBONES["attention_model"], in_channels=2).eval()
    frames = torch.rand(16, 1, 10, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tours = greedy(model, frames)
        assert torch.equal(greedy_reprojecting(model, frames), tours)
    assert torch.equal(tours.sort(dim=1).values, torch.arange(10).expand(16, 10))  # each tour visits every city once


def test_the_cli_prints_both_rates_and_the_speed_up_at_a_small_size():
    done = subprocess.run(
        [sys.executable, "-m", "geosweep.bench.tsp_decoding", "--num-cities", "8", "--batch", "4", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "greedy decoding, TSP8, batch 4" in done.stdout
    assert done.stdout.count("instances/s") == 2
    assert "speed-up of cached projections over the naive decoder: " in done.stdout
