"""The standard-vs-mip magnitude benchmark runs end to end on its real data, one epoch."""

import math

from geosweep.bench.mip_magnitude import TEST_EXPONENTS, config_for, train_and_score


def test_benchmark_scores_every_scale_and_measures_the_weight_norm_ratio():
    accuracies, ratio = train_and_score(config_for("standard", seed=0, epochs=1))
    assert len(accuracies) == len(TEST_EXPONENTS) and all(0 <= a <= 1 for a in accuracies)
    assert ratio > 10  # standard's raw radius input: generated weights grow with the cloud's scale
    assert train_and_score(config_for("none", seed=0, epochs=1))[1] is None
    assert math.isfinite(train_and_score(config_for("mip", seed=0, epochs=1))[1])
