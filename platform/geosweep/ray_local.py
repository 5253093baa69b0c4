"""Starting or joining Ray: a fresh loopback-only instance on one machine, the given cluster otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import ray

import geosweep


def ensure_ray(num_cpus: float | None = None) -> None:
    """Join the cluster named by RAY_ADDRESS (set under `ray job submit`), else start a local one.

    A bare `ray.init()` would attach to any cluster another process started on
    this machine, so the local case asks for a fresh instance explicitly. The
    loopback-only setting is made when geosweep is imported (see __init__).
    """
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        # Ship the geosweep the driver imported to every worker, installed there or not.
        ray.init(runtime_env={"py_modules": [str(Path(geosweep.__file__).parent)]})
        return
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=True,  # Train V2's placement-group clean-up queries it
        dashboard_host="127.0.0.1",
    )
