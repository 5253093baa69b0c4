"""`geosweep evaluate`: a logged model scored by its own task, as a trial scores it, on its data or other data.

The model is loaded with `mlflow.pytorch.load_model` from a run, a registered model or a path
(tracking/logged_model.py). Its task is rebuilt from the config logged with it (the dataset replaceable,
any field overridable) and scores the model's weights in one process with the task's own evaluation:
Task.evaluate (validation and test under the config's rotation protocol) and Task.final_metrics (every
rotation protocol and the invariance certificate; TSP's transformed test copies), the metrics a trial logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mlflow.pytorch
import torch
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from geosweep.config import RunConfig, apply_overrides, parse_run_config, read_yaml_mapping, set_values
from geosweep.registry import TASKS
from geosweep.tracking.logged_model import ModelError, download, model_uri
from geosweep.train.components import seed_everything


@dataclass(frozen=True)
class Evaluation:
    """A model's scores, and what it was scored on."""

    uri: str  # the MLflow URI the model was loaded from
    model_id: str | None  # its LoggedModel, if it was logged as one
    config: RunConfig  # the config its task was rebuilt from
    metrics: dict[str, float]

    def report(self) -> str:
        """The scores, one per line, under a line saying which model scored them on what."""
        dataset, rotation = self.config.dataset, self.config.dataset.rotation
        on = f"{dataset.name}" + (f", test rotation {rotation.test}" if self.config.task.name != "tsp" else "")
        width = max(map(len, self.metrics), default=0)
        lines = [f"{self.uri} (model {self.model_id or '-'}): {self.config.task.name} on {on}"]
        return "\n".join(lines + [f"  {name:<{width}}  {value:.6g}" for name, value in sorted(self.metrics.items())])


def evaluate(
    uri: str,
    tracking_uri: str,
    *,
    dataset_file: str | Path | None = None,
    overrides: list[str] = (),
    device: str | None = None,
    log_to: str | None = None,
) -> Evaluation:
    """Score the geosweep model at `uri` with its task's evaluation; optionally log the scores into a run.

    Args:
        uri: a run id, `runs:/RUN_ID/model`, `models:/NAME@ALIAS` (or `/VERSION`, or a model id) or a local path.
        tracking_uri: the MLflow store that `uri` and `log_to` refer to.
        dataset_file: YAML of a dataset spec (a run config's `dataset:` mapping), or a run config whose dataset to
            use, in place of the model's own.
        overrides: `a.b=value` changes to the model's config after that (e.g. `dataset.rotation.test=so3`).
        device: where to score (default: cuda where there is one, else cpu).
        log_to: a run to log the scores into (step 0, linked to the model where it is a LoggedModel of this store).

    Raises:
        ModelError: no model at `uri`, none of geosweep's, a dataset it does not fit, or no run `log_to`.
        ConfigError: the config, with the dataset and overrides, is invalid (naming the field).
    """
    client = MlflowClient(tracking_uri)
    if log_to is not None:
        try:
            client.get_run(log_to)
        except MlflowException as err:
            raise ModelError(f"--log-to {log_to!r}: no such run in {tracking_uri} ({err.message})") from None
    uri = model_uri(uri)
    local, mlmodel, raw = download(uri, tracking_uri)
    raw = set_values(raw, {"cache.dir": None})  # this machine's representation cache, not the trainer's
    if dataset_file is not None:
        spec = read_yaml_mapping(dataset_file)
        raw["dataset"] = spec.get("dataset", spec)
    config = parse_run_config(apply_overrides(raw, overrides), source=f"the config of {uri}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    seed_everything(config.seed)  # as a trial builds its task: the same data, the same evaluation draws
    task = TASKS.build(config.task.name, config.task.kwargs)
    model = task.setup(config, rank=0, world_size=1, device=device)
    try:
        model.load_state_dict(mlflow.pytorch.load_model(str(local)).state_dict())
    except RuntimeError as err:  # the dataset's classes or dimension differ from the model's
        raise ModelError(f"{uri}: its weights do not fit the model of this dataset config: {err}") from None
    model.to(device)
    evaluation = Evaluation(uri, mlmodel.model_id, config, task.evaluate() | task.final_metrics())
    if log_to is not None:
        log_evaluation(client, log_to, evaluation)
    return evaluation


def log_evaluation(client: MlflowClient, run_id: str, evaluation: Evaluation) -> None:
    """Log the scores into `run_id` at step 0, linked to the evaluated LoggedModel if this store holds it."""
    model_id = evaluation.model_id
    if model_id is not None:
        try:
            client.get_logged_model(model_id)
        except MlflowException:  # a model directory from another store
            model_id = None
    stamp = int(time.time() * 1000)
    metrics = [Metric(k, v, stamp, 0, model_id=model_id, run_id=run_id) for k, v in evaluation.metrics.items()]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag("evaluated.model_uri", evaluation.uri)])
