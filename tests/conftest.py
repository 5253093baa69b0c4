"""Shared fixtures: one local Ray per test session, a fresh MLflow store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray

from geosweep.ray_local import ensure_ray
from geosweep.tracking.postgres import postgres_bin_dir


@pytest.fixture
def ray_local():
    """The session's local Ray instance, started on first use and shut down at the end.

    A test that needs Ray stopped (e.g. to run its own `ray start --head`) calls ray.shutdown();
    the next test that asks for this fixture starts a fresh one.
    """
    ensure_ray(num_cpus=2)
    yield
    # shut down in the session finaliser below, not per test: start-up costs ~3 s


@pytest.fixture(scope="session", autouse=True)
def _shutdown_ray_at_end():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def postgres_installed() -> None:
    """Skip a test that needs Debian's PostgreSQL where it is missing; under CI, which installs it, fail."""
    if postgres_bin_dir() is None:
        message = "Debian's postgresql is missing: apt-get install -y postgresql (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An absolute SQLite tracking URI in the test's temp dir, also exported for subprocesses."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def tiny_config(tmp_path: Path) -> dict:
    """A run config (as data) small enough for a 2-worker CPU run of a few seconds per epoch."""
    return {
        "dataset": {
            "name": "shapes",
            "kwargs": {"num_points": 64, "train_per_class": 8, "val_per_class": 4, "test_per_class": 4},
            "rotation": {"train": "z", "test": "so3"},
        },
        "representation": {"name": "tinv_mds"},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [16, 32], "head_widths": [16], "dropout": 0.0}},
        "epochs": 2,
        "batch_size": 8,
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.5},
        "seed": 0,
        "cache": {"dir": str(tmp_path / "repr-cache")},
        "certify": {"samples": 4, "max_clouds": 32},
        "tracking": {"experiment": "tests"},
    }


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
