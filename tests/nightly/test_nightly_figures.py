"""Performance figures give the metrics their suite entries track (the overhead figure runs in test_run.py)."""

import math

from geosweep.nightly.figures import measure
from geosweep.nightly.suite import RepresentationThroughput


def test_representation_throughput_gives_its_tracked_ratios():
    spec = RepresentationThroughput(figure="representation_throughput", clouds=12, points=64, oracle_clouds=2)
    metrics = measure(spec)
    assert set(spec.metrics) <= set(metrics)
    # Only well-formed: at toy sizes the ratios swing with the machine's load
    # (the smoke suite records them, never judges them).
    assert all(math.isfinite(value) and value > 0 for value in metrics.values())
