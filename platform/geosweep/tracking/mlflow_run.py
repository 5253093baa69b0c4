"""MLflow: one run per training run, created by the driver, written to by rank 0.

The driver creates the database, experiment and run before any worker starts
(two workers creating a fresh SQLite database at once break its migration),
records params, lineage tags and the resolved config, and closes the run with
the outcome. Rank 0 logs per-epoch metrics and the final model (tracking/logged_model.py) into it.
"""

from __future__ import annotations

import getpass
import os
import platform as stdlib_platform  # the standard library's, never our source root
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import torch
from mlflow.data.dataset import Dataset
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import geosweep
from geosweep.config import RunConfig, dump_yaml, flatten
from geosweep.environ import scoped_environ, unless_set
from geosweep.tracking import logged_model
from geosweep.tracking.datasets import new_inputs
from geosweep.tracking.outbox import Outbox

# Without this tag the MLflow 3 UI shows experiments as GenAI ones.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}
# On a tracking server MLflow prints "View run ... at" and "View experiment at" for every run it ends: two
# lines per trial (and two more from the sweep's driver) on a cluster's console. geosweep prints its own.
QUIET_END = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def resolve_tracking_uri(configured: str | None) -> str:
    """The config's URI, else $MLFLOW_TRACKING_URI, else ./mlflow.db as an absolute SQLite URI.

    Absolute because Ray Train workers change directory.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


def experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create `name`; local stores keep artifacts beside the database."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if client.tracking_uri.startswith("sqlite:///"):
        artifact_location = (Path(client.tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_KIND_TAG)


def git_lineage() -> dict[str, str]:
    """Commit SHA and dirty flag of the working tree the driver runs from ("unknown" outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD") or os.environ.get("GEOSWEEP_GIT_SHA", "unknown")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git.sha": sha, "git.dirty": "unknown" if status is None else str(bool(status)).lower()}


def origin_tags() -> dict[str, str]:
    """Who ran this process's runs, from which entry point and commit: git lineage and MLflow's own source tags.

    The MLflow UI shows them as the User, Source and Version columns. A sweep reads them once in its driver and
    hands them to its trials, whose processes run in Tune's trial directory (no git checkout) or on other nodes.
    """
    lineage = git_lineage()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry or $USER
        user = "unknown"
    tags = {
        **lineage,
        "mlflow.user": user,
        "mlflow.source.name": Path(sys.argv[0]).name or "python",
        "mlflow.source.type": "JOB" if os.environ.get("RAY_ADDRESS") else "LOCAL",  # RAY_ADDRESS: `ray job submit`
    }
    if lineage["git.sha"] != "unknown":
        tags["mlflow.source.git.commit"] = lineage["git.sha"]
    return tags


def config_tags(config: RunConfig) -> dict[str, str]:
    """The tags a run's config decides: its axes, world size, batch and seed."""
    world_size = config.scaling.num_workers
    return {
        "axis.task": config.task.name,
        "axis.dataset": config.dataset.name,
        "axis.representation": config.representation.name,
        "axis.backbone": config.backbone.name,
        "axis.hypernet": config.hypernet.name,
        "world_size": str(world_size),
        "batch.per_worker": str(config.batch_size),
        "batch.effective": str(config.batch_size * world_size),
        "seed": str(config.seed),
    }


def lineage_tags(config: RunConfig) -> dict[str, str]:
    """The tags that say what produced a run: its config's (config_tags), its origin (origin_tags) and versions."""
    import ray
    import torch

    return {
        **config_tags(config),
        **origin_tags(),
        "version.geosweep": geosweep.__version__,
        "version.torch": torch.__version__,
        "version.ray": ray.__version__,
        "version.mlflow": mlflow.__version__,
        "version.python": stdlib_platform.python_version(),
    }


def start_run(config: RunConfig, run_name: str, tags: dict[str, str] | None = None) -> tuple[str, str]:
    """Create the MLflow run for `config` in the driver: its tags, params and config.yaml.

    Returns:
        (tracking URI, run id) for the workers.
    """
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    client = MlflowClient(uri)
    experiment = experiment_id(client, config.tracking.experiment)
    run = client.create_run(experiment, run_name=run_name, tags={**lineage_tags(config), **(tags or {})})
    run_id = run.info.run_id
    params = list(flatten(config).items())
    for start in range(0, len(params), 100):  # MLflow's per-batch limit
        client.log_batch(run_id, params=[mlflow.entities.Param(k, v) for k, v in params[start : start + 100]])
    client.log_text(run_id, dump_yaml(config), "config.yaml")
    return uri, run_id


def end_run(uri: str, run_id: str, succeeded: bool) -> None:
    """Mark the run FINISHED or FAILED; a failed run already KILLED stays KILLED.

    A sweep marks a trial's run KILLED when its scheduler stops the trial (geosweep.sweep.mlflow_callback);
    the trial's driver, torn down next, may see its training fail and must not overwrite that.
    """
    client = MlflowClient(uri)
    if not succeeded and client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.KILLED):
        return
    status = RunStatus.FINISHED if succeeded else RunStatus.FAILED
    terminate_run(client, run_id, RunStatus.to_string(status))


def terminate_run(client: MlflowClient, run_id: str, status: str) -> None:
    """End the run with `status` (FINISHED, FAILED, KILLED), without MLflow's links on the console."""
    with scoped_environ(unless_set(QUIET_END)):  # MLflow reads it at the call
        client.set_terminated(run_id, status)


class EpochLogger:
    """Rank 0's handle on the run: per-epoch metrics (step = epoch), artifacts and the final model, through an outbox.

    Calls return at once; an outbox delivers them in order and rides out an outage
    of the store (up to `outage_limit_s`). "Once" writes are decided when they are
    delivered, against what the run then holds, so a restarted attempt never logs
    an epoch, a step or an artifact twice. `close` waits until everything is delivered.
    """

    def __init__(
        self,
        uri: str,
        run_id: str,
        marker_metric: str = "train_loss",
        *,
        outage_limit_s: float = 600.0,
        memory_limit: int = 1000,
    ) -> None:
        self.client = MlflowClient(uri)
        self.run_id = run_id
        self.marker_metric = marker_metric
        self._logged_epochs: set[int] | None = None  # read from the store at the first delivery
        self._outbox = Outbox(
            self._deliver,
            f"MLflow at {uri} (run {run_id})",
            outage_limit_s=outage_limit_s,
            memory_limit=memory_limit,
        )

    def __enter__(self) -> EpochLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_epoch_once(self, epoch: int, metrics: dict[str, float]) -> None:
        """Log an epoch's metrics unless this run already holds that epoch (first write wins)."""
        self._put_metrics(epoch, metrics, once="epoch")

    def log_step_once(self, step: int, metrics: dict[str, float]) -> None:
        """Log a batch at `step` unless an earlier attempt of this run already did (step 0, final metrics).

        The batch's first metric tells: a batch is one write, so it holds all of its metrics or none.
        """
        if metrics:
            self._put_metrics(step, metrics, once="step")

    def log_artifact_once(self, path: Path) -> None:
        """Upload the file at `path` unless the run already holds an artifact of its name."""
        self._outbox.put({"kind": "artifact", "path": self._outbox.keep_file(path), "once": True})

    def log_model_once(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], config: RunConfig, step: int
    ) -> None:
        """Save the final model now and log it as the run's LoggedModel at `step`, unless the run already holds it.

        tracking/logged_model.py: the model is moved to the CPU; `inputs` (a few real instances) give its signature.
        """
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / logged_model.MODEL_NAME
            logged_model.save(model, inputs, config, saved)
            self._outbox.put({"kind": "model", "path": self._outbox.keep_file(saved), "step": step})

    def log_datasets_once(self, datasets: dict[str, Dataset]) -> None:
        """Record the run's inputs by context (tracking/datasets.py), each context once: a run's first ones stay."""
        self._outbox.put({"kind": "datasets", "datasets": {context: d.to_dict() for context, d in datasets.items()}})

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Log `metrics` at `step` in one batch."""
        self._put_metrics(step, metrics, once=None)

    def set_tag(self, key: str, value: str) -> None:
        """Set a tag on the run."""
        self._outbox.put({"kind": "tag", "key": key, "value": value})

    def log_artifact(self, path: Path) -> None:
        """Upload the file at `path` into the run's artifacts."""
        self._outbox.put({"kind": "artifact", "path": self._outbox.keep_file(path), "once": False})

    @property
    def undelivered(self) -> int:
        """Writes logged and not yet delivered (the store is slow or down)."""
        return self._outbox.undelivered

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait (at most `timeout_s`) until what was logged is in the store, unless the store is down."""
        self._outbox.settle(timeout_s)

    def close(self) -> None:
        """Deliver everything logged so far.

        Raises:
            TrackingUnavailable: the store refused a write or stayed unreachable past the outage limit.
        """
        self._outbox.close()

    def _put_metrics(self, step: int, metrics: dict[str, float], once: str | None) -> None:
        # The timestamp is fixed here: a retried write that did land is then an exact duplicate,
        # which MLflow's stores keep once.
        values = {k: float(v) for k, v in metrics.items()}
        self._outbox.put(
            {"kind": "metrics", "step": step, "metrics": values, "timestamp": int(time.time() * 1000), "once": once}
        )

    def _deliver(self, write: dict) -> None:
        """Perform one queued write (on the outbox's thread; raises while the store is down)."""
        if write["kind"] == "tag":
            self.client.set_tag(self.run_id, write["key"], write["value"])
        elif write["kind"] == "artifact":
            name = Path(write["path"]).name
            if not write["once"] or name not in {a.path for a in self.client.list_artifacts(self.run_id)}:
                self.client.log_artifact(self.run_id, write["path"])
        elif write["kind"] == "model":
            logged_model.deliver(self.client, self.run_id, write["path"], write["step"])
        elif write["kind"] == "datasets":
            self._log_new_inputs(write["datasets"])
        elif not self._already_logged(write):
            stamp, step = write["timestamp"], write["step"]
            metrics = [Metric(key, value, stamp, step) for key, value in write["metrics"].items()]
            self.client.log_batch(self.run_id, metrics=metrics)
            if write["once"] == "epoch":
                self._logged_epochs.add(step)

    def _log_new_inputs(self, datasets: dict[str, dict[str, str]]) -> None:
        """Log the datasets the run does not hold yet.

        MLflow creates a dataset by a lookup, then an insert: runs that log the same new dataset at once (a sweep's
        concurrent trials) race, and the later insert breaks the (experiment, name, digest) key: BAD_REQUEST. A second
        try finds the dataset the other run created.
        """
        for attempt in (1, 2):
            if not (inputs := new_inputs(self.client.get_run(self.run_id), datasets)):
                return
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except MlflowException as error:
                if attempt == 2 or error.error_code != "BAD_REQUEST":
                    raise

    def _already_logged(self, write: dict) -> bool:
        if write["once"] == "epoch":
            if self._logged_epochs is None:  # rank 0 is the run's only writer: read once
                history = self.client.get_metric_history(self.run_id, self.marker_metric)
                self._logged_epochs = {m.step for m in history}
            return write["step"] in self._logged_epochs
        if write["once"] == "step":
            first = next(iter(write["metrics"]))
            return write["step"] in {m.step for m in self.client.get_metric_history(self.run_id, first)}
        return False
