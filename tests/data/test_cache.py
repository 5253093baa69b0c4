import numpy as np

from geosweep.data.cache import RepresentationCache


class Doubler:  # stands in for a representation: the cache keys on its defining module's source
    pass


def entry(cache, points, **kwargs):
    key = cache.key(points, "doubler", kwargs, Doubler())
    return key, cache.get_or_build(key, lambda: points * 2)


def test_second_lookup_hits_and_returns_the_same_array(tmp_path):
    points = np.random.default_rng(0).normal(size=(4, 16, 3)).astype(np.float32)
    cache = RepresentationCache(tmp_path)
    _, first = entry(cache, points)
    _, second = entry(RepresentationCache(tmp_path), points)  # a later trial: a fresh handle
    np.testing.assert_array_equal(first, second)
    assert (cache.stats.misses, cache.stats.hits) == (1, 0)


def test_changed_kwarg_or_data_misses(tmp_path):
    points = np.zeros((2, 8, 3), np.float32)
    cache = RepresentationCache(tmp_path)
    entry(cache, points, scale="none")
    entry(cache, points, scale="rms")
    entry(cache, points + 1, scale="none")
    assert (cache.stats.misses, cache.stats.hits) == (3, 0)


def test_truncated_entry_is_detected_and_rebuilt(tmp_path):
    points = np.ones((2, 8, 3), np.float32)
    cache = RepresentationCache(tmp_path)
    key, built = entry(cache, points)
    data_path = tmp_path / f"{key}.npy"
    data_path.write_bytes(data_path.read_bytes()[:-10])
    again = RepresentationCache(tmp_path)
    _, rebuilt = entry(again, points)
    np.testing.assert_array_equal(rebuilt, built)
    assert again.stats.rebuilt == [str(data_path)] and again.stats.misses == 1


def test_tampered_entry_fails_its_checksum(tmp_path):
    points = np.ones((2, 8, 3), np.float32)
    cache = RepresentationCache(tmp_path)
    key, built = entry(cache, points)
    np.save(tmp_path / f"{key}.npy", built + 1)
    again = RepresentationCache(tmp_path)
    _, rebuilt = entry(again, points)
    np.testing.assert_array_equal(rebuilt, built)
    assert again.stats.rebuilt
