"""Before anything runs on a cluster: where runs write must be reachable from every node.

Checkpoints are written by workers on other nodes than the driver's, and a job's
working directory is a temporary copy: a head-local results directory or a
SQLite file beside the job would silently lose what a cluster run records.
"""

from __future__ import annotations

import os
from pathlib import Path

from geosweep.cluster.shape import ClusterShape
from geosweep.config import ConfigError

# Set by Ray's job supervisor for the driver of a `ray job submit` job.
_JOB_DRIVER_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def is_job_driver() -> bool:
    """Whether this process is the driver of a `ray job submit` job."""
    return _JOB_DRIVER_ENV in os.environ


def require_shared_storage(storage_path: str | None, shape: ClusterShape, field: str) -> None:
    """On a multi-node or autoscaling cluster, `storage_path` must be a URI every node reaches.

    Raises:
        ConfigError: naming `field`, what was given and what to use.
    """
    if not shape.multi_node or (storage_path and "://" in storage_path):
        return
    given = (
        f"{storage_path!r} is local to the driver's node"
        if storage_path
        else "is not set (Ray's default ~/ray_results is local to the driver's node)"
    )
    raise ConfigError(
        f"{field} {given}, but workers run on other nodes of this cluster ({shape.describe()}): "
        "use shared storage, e.g. s3://bucket/prefix, gs://bucket/prefix, or an NFS mount as file:///mnt/nfs/..."
    )


def require_lasting_tracking(configured: str | None, field: str, shape: ClusterShape) -> None:
    """A cluster run records into a tracking store that outlives the job.

    With no tracking URI anywhere, MLflow's default is ./mlflow.db: under `ray job submit`
    that is the job's temporary working directory, and on other nodes another file.

    Raises:
        ConfigError: naming MLFLOW_TRACKING_URI (and `field`) when nothing lasting is configured.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if not (is_job_driver() or shape.multi_node):
        return
    if uri is None:
        raise ConfigError(
            f"no MLflow tracking server is configured for this cluster run: set MLFLOW_TRACKING_URI (e.g. in the job's "
            f"runtime_env env_vars, http://mlflow.internal:5000) or {field}; the default ./mlflow.db would be written "
            "beside the job and lost with it"
        )
    if is_job_driver() and uri.startswith(("sqlite:///", "file:")) and _inside_working_dir(uri):
        raise ConfigError(
            f"MLFLOW_TRACKING_URI / {field} {uri!r} points into the job's temporary working directory, "
            "which is deleted with the job: use a tracking server (http://...) or an absolute path on shared storage"
        )


def _inside_working_dir(uri: str) -> bool:
    path = uri.removeprefix("sqlite:///").removeprefix("file://")
    return not os.path.isabs(path) or Path(path).resolve().is_relative_to(Path.cwd().resolve())
