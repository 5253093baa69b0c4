"""Starting or joining Ray: a fresh loopback-only instance on one machine, the given cluster otherwise.

What Ray needs set is set here, where Ray starts, and only while it starts, so that importing geosweep
changes nothing and the order of imports does not matter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import ray
from ray._private import ray_constants

import geosweep
from geosweep.environ import scoped_environ, unless_set

# Read by the processes Ray starts (GCS, raylet, dashboard, workers), which inherit the environment
# ray.init runs in. A value the user set wins.
RAY_PROCESS_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0"}  # nothing leaves the machine
# glibc backs its large allocations with transparent huge pages where the kernel offers them on request
# (THP "madvise", the common default). Tensors over 32 MB (FA's 8 frames per cloud) otherwise come fresh
# from mmap each step, 4 KB page faults and all: FA's quickstart epochs ran 30 % faster with it here.
# And it keeps freed memory for the next step: by default glibc hands a heap's free top back to the kernel
# once it exceeds twice the largest freed mmap, so each TSP step (activations of 1-3 MB) faulted ~4,000 pages
# in afresh; with these ~0 after the first steps, and a Train worker's epochs ran 2-6 % faster here. Setting any
# threshold ends glibc's dynamic ones, so mmap_threshold is pinned to their maximum (32 MB): trim_threshold
# alone would mmap every allocation over 128 KB. A process keeps up to 256 MB free above its peak heap (an idle
# local Ray's 21 processes here: 1.89 GB resident, against 1.76 GB).
LOCAL_MALLOC_DEFAULTS = {
    "GLIBC_TUNABLES": ":".join(
        [
            "glibc.malloc.hugetlb=1",
            f"glibc.malloc.mmap_threshold={32 * 2**20}",
            f"glibc.malloc.trim_threshold={256 * 2**20}",
            f"glibc.malloc.top_pad={64 * 2**20}",
        ]
    )
}
# Keeps a local instance's processes on 127.0.0.1 (Ray 2.60 otherwise binds the machine's interface address).
LOOPBACK_ONLY = {ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR: "0"}
# One machine drains no node: Train's preemption watcher (a process per trial, and an error line on the
# console from each) has nothing to watch there. A cluster keeps it, for its spot nodes.
LOCAL_TRAIN_DEFAULTS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Keep the local instance about to start, and every process of it, on 127.0.0.1.

    Ray resolves even an explicit `_node_ip_address="127.0.0.1"` to the interface address unless its
    Windows/macOS switch is off, and this process read that switch from the environment when it imported
    ray. So the switch is turned off here for the start, and its variable is set for the processes started.
    """
    switch = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with scoped_environ(LOOPBACK_ONLY):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = switch


def ensure_ray(num_cpus: float | None = None) -> None:
    """Join the cluster named by RAY_ADDRESS (set under `ray job submit`), else start a local one.

    A bare `ray.init()` would attach to any cluster another process started on
    this machine, so the local case asks for a fresh instance explicitly.
    A driver joining a cluster keeps its reachable address.

    Args:
        num_cpus: CPUs of a local instance; None: all of the machine's.
    """
    if ray.is_initialized():
        return
    defaults = unless_set(RAY_PROCESS_DEFAULTS)
    if os.environ.get("RAY_ADDRESS"):
        with scoped_environ(defaults):
            # Ship the geosweep the driver imported to every worker, installed there or not.
            ray.init(runtime_env={"py_modules": [str(Path(geosweep.__file__).parent)]})
        return
    local = unless_set(LOCAL_TRAIN_DEFAULTS | LOCAL_MALLOC_DEFAULTS)
    with scoped_environ(defaults | local), _loopback_only():
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=True,  # Train V2's placement-group clean-up queries it
            dashboard_host="127.0.0.1",
        )


def default_storage_path() -> str | None:
    """Where runs keep checkpoints when no storage_path is given.

    A local instance writes under the working directory (`./ray_results`, which git ignores), next to
    `./mlflow.db`, not into the home directory. On a cluster, Ray's own default; the cluster checks
    refuse it wherever workers run on other nodes.
    """
    if os.environ.get("RAY_ADDRESS"):
        return None
    return str(Path.cwd() / "ray_results")  # absolute: workers change directory


RAY_LOGS_ENV = "GEOSWEEP_RAY_LOGS"  # "1": Ray Train's and Tune's INFO lines reach the console too (`--ray-logs`)


def ray_logs_wanted() -> bool:
    """Whether the user asked for Ray's full console output (`--ray-logs`, or GEOSWEEP_RAY_LOGS=1)."""
    return os.environ.get(RAY_LOGS_ENV, "0") not in ("", "0")
