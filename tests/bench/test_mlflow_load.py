"""Concurrent trial writers on the default SQLite store lose nothing (the write path the training loop uses)."""

from geosweep.bench.mlflow_load import EPOCH_METRICS, run_load


def test_concurrent_writers_on_sqlite_lose_no_metric(tmp_path):
    load = run_load(f"sqlite:///{tmp_path / 'mlflow.db'}", writers=6, epochs=50)
    assert load.written == 6 * 50 * len(EPOCH_METRICS)
    assert (load.lost, load.errors) == (0, 0), load.first_error
