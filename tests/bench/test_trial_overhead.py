"""The per-trial overhead benchmark's import profile reads Python's own -X importtime output."""

from geosweep.bench.trial_overhead import import_seconds


def test_import_profile_names_the_heavy_packages_a_train_worker_imports():
    seconds = import_seconds("geosweep.train.loop")
    assert {"total", "torch", "mlflow", "ray.train.torch"} <= set(seconds)
    assert 0 < seconds["torch"] < seconds["total"] and 0 < seconds["mlflow"] < seconds["total"]
