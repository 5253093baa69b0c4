"""The TSP task without Ray: its declared kind, loss and gap, tour identity, baselines, invariance of greedy tours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geosweep.config import parse_run_config
from geosweep.data.tours import tour_length
from geosweep.data.tsp import transformed_variants
from geosweep.model import build_model
from geosweep.registry import TASKS
from geosweep.tasks.baselines import ExponentialBaseline, RolloutBaseline, WarmupBaseline
from geosweep.tasks.tsp import TSP, canonical_cycle, same_tours


def uniform_sampler(n: int):
    """Uniform n-city instances from the generator a baseline passes, as the tsp dataset draws them."""
    return lambda rng, size: rng.random((size, n, 2), dtype=np.float32)


def uniform_cities(size: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((size, n, 2), dtype=np.float32)


def tour_model(representation: dict, seed: int = 0):
    torch.manual_seed(seed)
    config = parse_run_config(
        {
            "task": {"name": "tsp"},
            "dataset": {"name": "tsp", "kwargs": {"num_nodes": 10, "reference": "none"}},
            "representation": representation,
            "backbone": {"name": "attention_model", "kwargs": {"embed_dim": 16, "num_layers": 1, "num_heads": 2}},
            "epochs": 1,
        }
    )
    return build_model(config, dim=2).eval()


def test_declares_the_tour_kind_and_builds_from_its_own_signature():
    assert TASKS.kind("tsp") == "tour"
    task = TASKS.build("tsp", {"baseline": "exponential", "epoch_size": "64"})
    assert isinstance(task, TSP) and (task.baseline_name, task.epoch_size, task.grad_clip) == ("exponential", 64, 1.0)
    with pytest.raises(ValueError, match=r"argument 'grad_clip': Input should be greater than 0"):
        TASKS.validate_kwargs("tsp", {"grad_clip": 0})


def test_reinforce_lowers_the_likelihood_of_tours_longer_than_the_baseline():
    log_likelihood = torch.zeros(2, requires_grad=True)
    loss = TSP.reinforce(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 2.0]), log_likelihood)
    loss.backward()
    assert loss.item() == 0.0 and log_likelihood.grad.tolist() == [0.5, -0.5]  # descent lowers the longer tour's


def test_gap_is_the_excess_over_the_reference_in_percent():
    gaps = TSP.gap_percent(torch.tensor([4.0, 3.0]), torch.tensor([4.0, 2.0]))
    assert gaps.tolist() == [0.0, 50.0]
    lengths = torch.tensor([1.0, 2.0])
    assert TSP().gap_or_nan(lengths, None).isnan().all()  # reference: none


def test_loss_scores_sampled_tours_against_the_baseline_and_reports_their_length():
    task = TSP(baseline="exponential", ema_beta=0.0)
    task.baseline = ExponentialBaseline(task.ema_beta)
    cities = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    log_likelihood = torch.zeros(1, requires_grad=True)
    loss, metrics = task.loss((torch.tensor([[0, 1, 2, 3]]), log_likelihood), cities)
    assert loss.item() == 0.0  # the exponential baseline with beta 0 is the batch's own length
    assert metrics["tour_len"].item() == pytest.approx(4.0)
    with pytest.raises(ValueError):  # an invalid tour is an error, never a length
        task.loss((torch.tensor([[0, 1, 1, 3]]), log_likelihood), cities)


def test_same_cycle_whatever_the_start_and_direction():
    tour = torch.tensor([[2, 0, 3, 1, 4]])
    rolled, reversed_ = tour.roll(2, dims=1), tour.flip(1)
    assert same_tours(torch.cat([rolled, reversed_]), tour.expand(2, -1)).all()
    assert canonical_cycle(tour).tolist() == [[0, 2, 4, 1, 3]]  # from city 0 towards its smaller neighbour
    assert not same_tours(torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([[0, 2, 1, 3, 4]])).any()


def test_exponential_baseline_is_a_moving_average():
    baseline = ExponentialBaseline(beta=0.5)
    assert baseline(None, torch.tensor([2.0, 4.0])).tolist() == [3.0, 3.0]  # first batch: its mean
    assert baseline(None, torch.tensor([5.0, 5.0])).tolist() == [4.0, 4.0]
    restored = ExponentialBaseline(beta=0.5)
    restored.load_state_dict(baseline.state_dict())
    assert restored.value == 4.0


def test_rollout_baseline_is_replaced_only_by_a_significantly_better_policy():
    policy = tour_model({"name": "raw"}, seed=0)
    sample = lambda rng, size: rng.random((size, 10, 2), dtype=np.float32)  # noqa: E731
    baseline = RolloutBaseline(policy, sample, eval_size=64, alpha=0.05, seed=0)
    first_set = baseline.eval_cities.clone()
    assert baseline.epoch_end(policy)["baseline/replaced"] == 0.0  # the same weights: no improvement

    # Pretend the frozen baseline's tours were 10 % longer (policy significantly better), then 10 % shorter.
    true_lengths = baseline.baseline_lengths(64).clone()
    baseline.eval_lengths = true_lengths * 0.9
    assert baseline.epoch_end(policy)["baseline/replaced"] == 0.0 and baseline.version == 0
    baseline.eval_lengths = true_lengths * 1.1
    outcome = baseline.epoch_end(policy)
    assert outcome["baseline/replaced"] == 1.0 and outcome["baseline/p_value"] < 1e-6
    assert baseline.version == 1 and not torch.equal(baseline.eval_cities, first_set)  # a fresh held-out set

    restored = RolloutBaseline(tour_model({"name": "raw"}, seed=1), sample, eval_size=64, alpha=0.05, seed=0)
    restored.load_state_dict(baseline.state_dict())
    assert restored.version == 1 and torch.equal(restored.eval_cities, baseline.eval_cities)
    assert torch.equal(restored.baseline_lengths(64), baseline.baseline_lengths(64))


def test_the_frozen_policys_lengths_are_decoded_when_first_needed_and_equal_one_pass():
    policy = tour_model({"name": "raw"}, seed=0)
    baseline = RolloutBaseline(policy, uniform_sampler(10), eval_size=1024, alpha=0.05, seed=0)
    assert len(baseline.eval_lengths) == 0  # nothing decoded for a set no test has reached
    first = baseline.baseline_lengths(256).clone()
    whole = tour_length(baseline.eval_cities, policy.greedy_tours(baseline.eval_cities))
    assert torch.equal(baseline.baseline_lengths(1024), whole) and torch.equal(first, whole[:256])


@pytest.mark.parametrize(
    "shift, instances, replaced",
    [
        (1.0, 256, 1.0),  # overwhelming: decided on the first tenth (in whole EVAL_BATCHes)
        (0.1, 2560, 1.0),  # p = 0.017 on the first tenth (below alpha, not alpha / 50), 2e-8 on the whole set
        (-0.1, 2560, 0.0),  # the policy is worse: the whole set is decoded, nothing replaced
    ],
)
def test_the_t_test_stops_early_only_on_overwhelming_evidence(shift, instances, replaced):
    policy = tour_model({"name": "raw"}, seed=0)
    baseline = RolloutBaseline(policy, uniform_sampler(10), eval_size=2560, alpha=0.05, seed=0)
    assert baseline.looks == [256, 2560]
    # The frozen policy's tours are the policy's (same weights) plus noise of SD 1 and mean `shift` per instance.
    noise = torch.randn(2560, generator=torch.Generator().manual_seed(0)) + shift
    baseline.eval_lengths = baseline.baseline_lengths(2560) + noise
    outcome = baseline.epoch_end(policy)
    assert (outcome["baseline/eval_instances"], outcome["baseline/replaced"]) == (instances, replaced)
    if instances == 256:
        assert outcome["baseline/p_value"] < 0.05 / 50


def test_warmup_starts_on_the_moving_average_and_blends_into_the_rollout():
    policy = tour_model({"name": "raw"}, seed=0)
    sample = lambda rng, size: rng.random((size, 10, 2), dtype=np.float32)  # noqa: E731
    warmup = WarmupBaseline(RolloutBaseline(policy, sample, eval_size=64, alpha=0.05, seed=0), beta=0.8, epochs=2)
    cities = torch.from_numpy(uniform_cities(16, 10))
    greedy = warmup.rollout(cities, None)  # the frozen policy's greedy tour lengths
    assert warmup(cities, torch.full((16,), 5.0)).tolist() == [5.0] * 16  # epoch 1: the average alone
    assert warmup.epoch_end(policy)["baseline/rollout_weight"] == 0.0
    blended = warmup(cities, torch.full((16,), 3.0))  # epoch 2 of 2: halfway; the average is 0.8 * 5 + 0.2 * 3
    torch.testing.assert_close(blended, 0.5 * greedy + 0.5 * 4.6)
    assert warmup.epoch_end(policy)["baseline/rollout_weight"] == 0.5
    torch.testing.assert_close(warmup(cities, torch.full((16,), 9.0)), greedy)  # from epoch 3: the rollout alone
    restored = WarmupBaseline(RolloutBaseline(policy, sample, 64, 0.05, 0), beta=0.8, epochs=2)
    restored.load_state_dict(warmup.state_dict())
    assert restored.epochs_done == 2 and restored.exponential.value == pytest.approx(4.6)


@pytest.mark.parametrize("warmup_epochs, expected", [(None, WarmupBaseline), (0, RolloutBaseline)])
def test_the_rollout_is_warmed_up_for_one_epoch_at_beta_08_unless_told_otherwise(tmp_path, warmup_epochs, expected):
    task_kwargs = {} if warmup_epochs is None else {"warmup_epochs": warmup_epochs}
    config = parse_run_config({
        "task": {"name": "tsp", "kwargs": {"baseline_eval_size": 8, **task_kwargs}},
        "dataset": {"name": "tsp", "kwargs": {"num_nodes": 6, "val_size": 4, "test_size": 4, "reference": "none",
                                               "data_dir": str(tmp_path)}},
        "representation": {"name": "raw", "kwargs": {"centre": False}},
        "backbone": {"name": "attention_model", "kwargs": {"embed_dim": 8, "num_layers": 1, "num_heads": 2}},
        "epochs": 1,
    })  # fmt: skip  # one line per config section
    task = TASKS.build("tsp", config.task.kwargs)
    task.setup(config, rank=0, world_size=1, device=torch.device("cpu"))
    assert type(task.baseline) is expected
    if expected is WarmupBaseline:  # Kool et al.'s defaults
        assert (task.baseline.epochs, task.baseline.exponential.beta) == (1, 0.8)


@pytest.mark.parametrize(
    "representation",
    [
        {"name": "tinv_mds", "kwargs": {"scale": "rms"}},
        {"name": "fa", "kwargs": {"scale": "rms"}},
    ],
)
def test_invariant_inputs_give_the_same_greedy_tours_on_transformed_copies(representation):
    model = tour_model(representation)
    cities = uniform_cities(64, 10)
    tours = model.greedy_tours(torch.from_numpy(cities))
    for name, (coords, _) in transformed_variants(cities, seed=0).items():
        agreement = same_tours(model.greedy_tours(torch.from_numpy(coords)), tours).double().mean().item()
        assert agreement >= 0.95, (name, agreement)  # uniform instances are rarely sign-ambiguous


def test_raw_coordinates_change_their_tours_under_transformation():
    # Negative control: the check above must be able to fail.
    model = tour_model({"name": "raw"})
    cities = uniform_cities(64, 10)
    tours = model.greedy_tours(torch.from_numpy(cities))
    coords, _ = transformed_variants(cities, seed=0)["all"]
    assert same_tours(model.greedy_tours(torch.from_numpy(coords)), tours).double().mean().item() < 0.5


@pytest.mark.parametrize("centre, agreement", [(False, "changes"), (True, "keeps")])
def test_only_uncentred_raw_coordinates_see_a_translated_instance(centre, agreement):
    # The translated test set separates raw (Kool et al.'s uncentred input) from the invariant representations.
    model = tour_model({"name": "raw", "kwargs": {"centre": centre}})
    cities = uniform_cities(64, 10)
    tours = model.greedy_tours(torch.from_numpy(cities))
    coords, _ = transformed_variants(cities, seed=0)["translated"]
    same = same_tours(model.greedy_tours(torch.from_numpy(coords)), tours).double().mean().item()
    assert same < 0.5 if agreement == "changes" else same >= 0.95  # float32 round-off may flip a near-tie
