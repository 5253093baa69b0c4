"""attention_model: valid tours, decoding modes, REINFORCE gradients, exact frame averaging, masking, hypernets."""

from __future__ import annotations

import math

import pytest
import torch

import geosweep.config  # noqa: F401  (fills the registries)
from geosweep.backbones.attention_model import AttentionModel
from geosweep.data.tours import check_tours, tour_length
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS
from tiny_sizes import TINY_BACKBONES, TINY_HYPERNET

TINY = TINY_BACKBONES["attention_model"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors and many small decoding steps: a second intra-op thread only adds synchronisation
    (measured 10x slower per decode on this 2-core machine under load), so run this file on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**overrides) -> AttentionModel:
    torch.manual_seed(0)
    return BACKBONES.build("attention_model", {**TINY, **overrides}, in_channels=2)


def cities(batch: int = 6, frames: int = 1, num_cities: int = 10, dtype=torch.float32, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, frames, num_cities, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def assert_permutations(tours: torch.Tensor, num_cities: int) -> None:
    assert tours.dtype == torch.int64
    check_tours(tours, num_cities)


def tour_lengths(frames: torch.Tensor, tours: torch.Tensor) -> torch.Tensor:
    """Closed-tour lengths (B,) on the first frame, which here is the cities themselves."""
    return tour_length(frames[:, 0], tours)


def test_declares_the_tour_contract():
    assert BACKBONES.kind("attention_model") == "tour"
    assert BACKBONES.get("attention_model") is AttentionModel


@pytest.mark.parametrize("decode", ["greedy", "sample"])
@pytest.mark.parametrize("num_frames", [1, 4])
@pytest.mark.parametrize("num_cities", [1, 2, 13])
@pytest.mark.parametrize("normalization", ["batch", "layer"])
def test_tours_are_permutations_with_finite_log_likelihoods(decode, num_frames, num_cities, normalization):
    model = tiny_model(normalization=normalization)
    tours, log_likelihood = model(cities(5, num_frames, num_cities), decode=decode)
    assert tours.shape == (5, num_cities)
    assert_permutations(tours, num_cities)
    assert log_likelihood.shape == (5,) and torch.isfinite(log_likelihood).all() and (log_likelihood <= 0).all()


def test_greedy_is_deterministic_and_sampling_is_seeded():
    model = tiny_model().eval()
    x = cities(8, 1, 12)
    assert all(map(torch.equal, model(x), model(x)))
    torch.manual_seed(3)
    first = model(x, decode="sample")
    torch.manual_seed(3)
    assert all(map(torch.equal, model(x, decode="sample"), first))
    torch.manual_seed(4)
    assert not torch.equal(model(x, decode="sample")[0], first[0])  # 8 tours of 12 cities: a repeat is ~impossible


@pytest.mark.parametrize("decode", ["greedy", "sample"])
def test_reinforce_loss_reaches_every_parameter(decode):
    model = tiny_model(num_layers=2).train()
    x = cities(6, 4, 9)
    tours, log_likelihood = model(x, decode=decode)
    cost = tour_lengths(x, tours)
    ((cost - cost.mean()) * log_likelihood).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_frame_averaging_is_exact():
    model = tiny_model().double().eval()
    x = cities(6, 4, 11, dtype=torch.float64)
    tours, log_likelihood = model(x)
    shuffled_tours, shuffled_log_likelihood = model(x[:, [2, 0, 3, 1]])
    assert torch.equal(shuffled_tours, tours)
    torch.testing.assert_close(shuffled_log_likelihood, log_likelihood)
    # F = 1 is the model on that frame, and so is any number of copies of it.
    torch.testing.assert_close(model(x[:, :1].expand(-1, 3, -1, -1)), model(x[:, :1]))


def test_frame_averaged_tours_are_invariant_to_rigid_motions_and_equivariant_to_relabelling():
    model = tiny_model().double().eval()
    fa = REPRESENTATIONS.build("fa", {})
    points = cities(5, 1, 12, dtype=torch.float64)[:, 0] * torch.tensor([3.0, 1.0], dtype=torch.float64)
    tours, log_likelihood = model(fa(points))

    angle = torch.tensor(0.7, dtype=torch.float64)
    rotation = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    mirrored = points @ rotation.T * torch.tensor([1.0, -1.0], dtype=torch.float64) + 5.0
    moved_tours, moved_log_likelihood = model(fa(mirrored))
    assert torch.equal(moved_tours, tours)
    torch.testing.assert_close(moved_log_likelihood, log_likelihood)

    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    relabelled_tours, _ = model(fa(points[:, perm]))
    assert torch.equal(perm[relabelled_tours], tours)  # the same cities in the same order


def test_log_likelihood_is_the_sum_of_the_step_log_probs_and_visited_nodes_are_masked():
    model = tiny_model().double().eval()
    x = cities(4, 1, 8, dtype=torch.float64)
    tours, log_likelihood = model(x, decode="sample")
    nodes = model.encoder(model.init_embed(x)).mean(dim=1)
    projected = model.decoder.project(nodes, model.head)
    visited = torch.zeros(4, 8, dtype=torch.bool)
    total = torch.zeros(4, dtype=torch.float64)
    for step in range(8):
        log_p = model.decoder.log_probs(nodes, projected, model.head, tours[:, :step], visited)
        torch.testing.assert_close(log_p.exp().sum(dim=1), torch.ones(4, dtype=torch.float64))
        assert (log_p[visited] == -math.inf).all()  # probability exactly 0 of a revisit
        total += log_p.gather(1, tours[:, step : step + 1]).squeeze(1)
        visited[torch.arange(4), tours[:, step]] = True
    torch.testing.assert_close(total, log_likelihood)


def test_bf16_autocast_keeps_the_pointer_and_the_log_likelihood_fp32():
    # precision: bf16 runs the forward under autocast; the encoder may be bf16, the pointer may not: bf16
    # log-probabilities sum to 1 only within ~1e-2, and 10 * tanh(.) would move in steps of up to 0.0625.
    model, x = tiny_model(), cities(8, 1, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tours, log_likelihood = model(x, decode="sample")
        nodes = model.encoder(model.init_embed(x)).mean(dim=1)
        log_p = model.decoder.log_probs(
            nodes, model.decoder.project(nodes, model.head), model.head, tours[:, :0], torch.zeros(8, 12, dtype=bool)
        )
    assert nodes.dtype == torch.bfloat16  # the autocast is on: the encoder ran in bf16
    assert log_p.dtype == log_likelihood.dtype == torch.float32
    torch.testing.assert_close(log_p.exp().sum(dim=1), torch.ones(8), atol=1e-6, rtol=0)
    log_likelihood.sum().backward()
    assert model.head.logit_key.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("targets", [["head"], ["encoder"], ["decoder"]])
@pytest.mark.parametrize("num_frames", [1, 4])
def test_hypernetwork_generates_the_target_layers_per_instance(targets, num_frames):
    hyper = HYPERNETS.build("mip", {**TINY_HYPERNET, "targets": targets}, target=tiny_model(), in_channels=2)
    x = cities(5, num_frames, 9)
    for decode in ("greedy", "sample"):
        tours, log_likelihood = hyper(x, decode=decode)
        assert_permutations(tours, 9)
    cost = tour_lengths(x, tours)
    ((cost - cost.mean()) * log_likelihood).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in hyper.h.parameters())
    assert next(iter(hyper.generated.values())).weight.shape[0] == 5


def test_hypernetwork_condition_uses_the_first_frame():
    hyper = HYPERNETS.build("mip", TINY_HYPERNET, target=tiny_model(), in_channels=2)
    x = cities(3, 4, 9)
    torch.testing.assert_close(hyper.conditioning(x), hyper.conditioning(x[:, 0]))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"normalization": "instance"}, "normalization"),
        ({"tanh_clip": 0.0}, "tanh_clip"),
        ({"ff_hidden": -1}, "ff_hidden"),
    ],
)
def test_bad_kwargs_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"backbone 'attention_model': argument '{argument}'"):
        BACKBONES.validate_kwargs("attention_model", kwargs)


def test_embed_dim_must_divide_by_num_heads():
    with pytest.raises(ValueError, match="'embed_dim' \\(12\\) must be divisible by 'num_heads' \\(8\\)"):
        BACKBONES.build("attention_model", {"embed_dim": 12}, in_channels=2)


@pytest.mark.parametrize("shape", [(4, 10, 2), (4, 1, 10, 3)])
def test_wrong_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"frames must be \(batch, frames, cities, 2\)"):
        tiny_model()(torch.rand(shape))


def test_unknown_decode_is_a_clear_error():
    with pytest.raises(ValueError, match="decode must be 'greedy' or 'sample', got 'beam'"):
        tiny_model()(cities(), decode="beam")
