"""Tours as permutations: validity checks, lengths, and exact (Held-Karp) and LKH reference tours."""

import itertools
import math

import numpy as np
import pytest
import torch

from geosweep.data.tours import MAX_HELD_KARP_NODES, InvalidTourError, check_tours, held_karp, lkh_tours, tour_length

UNIT_SQUARE = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])


def brute_force(coords: np.ndarray) -> float:
    """Shortest closed tour over all orders of cities 1..n-1 after city 0."""
    orders = np.array([(0, *rest) for rest in itertools.permutations(range(1, len(coords)))])
    cities = coords[orders]
    return float(np.linalg.norm(cities - np.roll(cities, -1, axis=1), axis=2).sum(axis=1).min())


def test_valid_tours_pass_as_tensor_or_array():
    tours = np.array([[0, 1, 2, 3], [3, 1, 0, 2]])
    check_tours(tours, 4)
    check_tours(torch.from_numpy(tours).int(), 4)
    check_tours(np.empty((0, 4), dtype=np.int64), 4)


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ([0, 2, 2, 3], "instance 1: the tour visits city 2 2 times and never visits city 1"),
        ([0, 1, 4, 3], "instance 1: city index 4 is out of range 0..3"),
        ([0, -1, 2, 3], "instance 1: city index -1 is out of range 0..3"),
    ],
)
def test_invalid_tour_names_the_first_bad_instance(bad_row, message):
    tours = torch.tensor([[0, 1, 2, 3], bad_row, [1, 1, 1, 1]])
    with pytest.raises(InvalidTourError, match=message):
        check_tours(tours, 4)


def test_wrong_length_and_dtype_are_invalid():
    with pytest.raises(InvalidTourError, match="instance 0: the tour has 3 entries, expected a permutation of the 4"):
        check_tours(torch.tensor([[0, 1, 2]]), 4)
    with pytest.raises(InvalidTourError, match="integer city indices, got dtype float32"):
        check_tours(np.zeros((1, 4), dtype=np.float32), 4)
    with pytest.raises(InvalidTourError, match=r"shape \(B, n\)"):
        check_tours(torch.arange(4), 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unit_square_perimeter_and_crossing_tour(dtype):
    coords = UNIT_SQUARE.to(dtype).expand(2, -1, -1)
    lengths = tour_length(coords, torch.tensor([[0, 1, 2, 3], [0, 2, 1, 3]]))
    assert lengths.dtype == dtype
    assert lengths.tolist() == pytest.approx([4.0, 2.0 + 2.0 * math.sqrt(2.0)], rel=1e-6)


def test_tour_length_checks_tours_unless_told_not_to():
    with pytest.raises(InvalidTourError, match="instance 0"):
        tour_length(UNIT_SQUARE, torch.tensor([[0, 1, 1, 3]]))
    unchecked = tour_length(UNIT_SQUARE, torch.tensor([[0, 1, 1, 3]]), check=False)
    assert unchecked.item() == pytest.approx(2.0 + math.sqrt(2.0))  # 0-1, 1-1, 1-3, 3-0
    with pytest.raises(ValueError, match=r"tours must have shape \(1, 4\)"):
        tour_length(UNIT_SQUARE, torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))


@pytest.mark.parametrize("n", [3, 5, 8])
def test_held_karp_matches_brute_force(n):
    rng = np.random.default_rng(n)
    for coords in rng.random((3, n, 2)):
        length, tour = held_karp(coords)
        assert length == pytest.approx(brute_force(coords), rel=1e-12)
        assert tour[0] == 0 and sorted(tour) == list(range(n))
        closed = tour_length(torch.from_numpy(coords)[None], torch.from_numpy(tour)[None]).item()
        assert closed == pytest.approx(length, rel=1e-12)


def test_held_karp_refuses_large_instances_naming_the_limit():
    with pytest.raises(ValueError, match=f"limited to {MAX_HELD_KARP_NODES}"):
        held_karp(np.zeros((MAX_HELD_KARP_NODES + 1, 2)))


def test_lkh_tours_are_optimal_deterministic_and_start_at_zero():
    rng = np.random.default_rng(0)
    for n in (5, 8, 10):
        coords = rng.random((4, n, 2))
        tours = lkh_tours(coords)
        assert tours.dtype == np.int64 and tours.shape == (4, n) and (tours[:, 0] == 0).all()
        np.testing.assert_array_equal(lkh_tours(coords), tours)
        lengths = tour_length(torch.from_numpy(coords), torch.from_numpy(tours)).numpy()
        optimal = [held_karp(instance)[0] for instance in coords]
        np.testing.assert_allclose(lengths, optimal, rtol=1e-6)
        # Far from the unit square and tiny: LKH's integer scaling adapts to each instance.
        moved = lkh_tours(1e-3 * coords + 100.0)
        moved_lengths = tour_length(torch.from_numpy(coords), torch.from_numpy(moved)).numpy()
        np.testing.assert_allclose(moved_lengths, optimal, rtol=1e-6)


@pytest.mark.gpu
def test_checks_and_lengths_run_on_the_gpu():
    coords = UNIT_SQUARE.cuda().expand(2, -1, -1)
    lengths = tour_length(coords, torch.tensor([[0, 1, 2, 3], [0, 2, 1, 3]], device="cuda"))
    assert lengths.device.type == "cuda"
    assert lengths.tolist() == pytest.approx([4.0, 2.0 + 2.0 * math.sqrt(2.0)], rel=1e-6)
    with pytest.raises(InvalidTourError, match="instance 1: the tour visits city 2 2 times"):
        check_tours(torch.tensor([[0, 1, 2, 3], [0, 2, 2, 3]], device="cuda"), 4)
