import itertools

import numpy as np
import pytest

from geosweep.random_streams import STREAMS, generator, seed_sequence, stream_id, torch_seed

# Seeds around the configs' defaults (1234 is both a run seed and the TSP test set's seed), 0,
# neighbours, and seeds wider than one 32-bit word (which take two words of the entropy).
SEEDS = [0, 1, 2, 1233, 1234, 1235, 4321, 2**32 - 1, 2**32, 2**32 + 1234, 2**63 + 7]


def all_streams():
    for name, keys in STREAMS.items():
        for values in itertools.product(range(3), repeat=len(keys)):
            for seed in SEEDS:
                yield name, seed, values


def test_stream_ids_are_distinct():
    assert len({stream_id(name) for name in STREAMS}) == len(STREAMS)


def test_no_two_streams_coincide_for_any_seed():
    states = {}
    for name, seed, keys in all_streams():
        state = tuple(seed_sequence(name, seed, *keys).generate_state(4))
        assert state not in states, f"{(name, seed, keys)} coincides with {states[state]}"
        states[state] = (name, seed, keys)
    assert len(states) == sum(3 ** len(keys) for keys in STREAMS.values()) * len(SEEDS)


def test_a_stream_is_reproducible_and_draws_differ_between_names():
    assert np.array_equal(generator("tsp.test", 1234).random(8), generator("tsp.test", 1234).random(8))
    assert not np.array_equal(generator("tsp.test", 1234).random(8), generator("tsp.variant", 1234, 2).random(8))
    assert torch_seed("torch.rank", 5, 1, 1) == torch_seed("torch.rank", 5, 1, 1) != torch_seed("torch.rank", 5, 0, 1)
    assert torch_seed("torch.rank", 5, 1, 1) != torch_seed("torch.rank", 5, 1, 2)  # each epoch its own draws
    assert 0 <= torch_seed("torch.rank", 2**63 + 7, 3, 1) < 2**63


def test_unknown_names_and_wrong_keys_are_errors():
    with pytest.raises(KeyError, match="unknown random stream 'tsp.tset'"):
        generator("tsp.tset", 1)
    with pytest.raises(ValueError, match=r"takes keys \('rank', 'epoch'\)"):
        generator("tsp.train", 1, 0)
