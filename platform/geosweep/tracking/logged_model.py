"""A run's final model as an MLflow model: an MLflow 3 LoggedModel named `model`, linked to the run that trained it.

The model is saved with `mlflow.pytorch.save_model` as geosweep's own module, pickled (cloudpickle) by
reference to geosweep's classes: `mlflow.pytorch.load_model` gives back, where geosweep is installed, the
very model a task scores (its representation, its invariance claim, greedy tour decoding). A traced `pt2`
export would keep one forward of fixed shapes only: TSP decodes data-dependently, and the model's other
entry points and attributes would be gone. Beside the weights: `config.yaml`, the resolved run config,
named by the MLmodel's metadata `geosweep_config` (`geosweep evaluate` rebuilds the task from it); the
signature and input example, from a few real test instances; the requirements: geosweep, torch and
cloudpickle at the versions that saved it.

Rank 0 saves the model locally and its outbox delivers it (EpochLogger.log_model_once), so the end of a run
rides out an MLflow outage as every other write does. `deliver` can be repeated after an outage or a
restarted attempt: it continues with the LoggedModel the run already has, and a READY one is left alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow.artifacts
import mlflow.pytorch
import torch
import yaml
from mlflow.entities import LoggedModel, LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model as MlflowModel
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

import geosweep
from geosweep.config import RunConfig, dump_yaml, load_yaml
from geosweep.model import Model

MODEL_NAME = "model"  # the LoggedModel's name: `runs:/<run id>/model` loads it
CONFIG_FILE = "config.yaml"
MLMODEL = "MLmodel"  # the model directory's description: flavors, signature, metadata
MODEL_URI_HELP = "a run id, runs:/RUN_ID/model, models:/NAME@ALIAS, models:/NAME/VERSION, models:/MODEL_ID or a path"
RUN_ID = re.compile(r"[0-9a-f]{32}")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # runs:/, models:/, s3://, file:///, mlflow-artifacts:/


class ModelError(ValueError):
    """A model URI that names no model, or a model that is not a geosweep model."""


def save(model: Model, inputs: dict[str, torch.Tensor], config: RunConfig, path: Path) -> None:
    """Save `model` (moved to the CPU and to eval mode: training is over) as an MLflow model directory at `path`.

    Args:
        model: the trained model.
        inputs: a few real instances as the model's keyword arguments (Task.example_inputs): its signature.
        config: the run's resolved config, saved beside the model.
        path: a directory that does not exist yet.
    """
    model = model.cpu().eval()  # loadable on any machine, GPU or not
    with torch.no_grad():
        outputs = model(**inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    example = {name: tensor.numpy() for name, tensor in inputs.items()}
    returned = {name: output.numpy() for name, output in zip(model.output_names, outputs, strict=True)}
    # geosweep pickles on purpose (see above); MLflow would warn about it on every save.
    pytorch_logger = logging.getLogger("mlflow.pytorch")
    level = pytorch_logger.level
    pytorch_logger.setLevel(logging.ERROR)
    try:
        mlflow.pytorch.save_model(
            model,
            str(path),
            serialization_format="pickle",
            signature=infer_signature(example, returned),
            input_example=example,
            pip_requirements=[
                f"geosweep=={geosweep.__version__}",
                f"torch=={torch.__version__.split('+')[0]}",  # no local label (+cpu, +cu128): PyPI has none
                f"cloudpickle=={cloudpickle.__version__}",
            ],
            metadata={"geosweep_config": CONFIG_FILE, "geosweep_version": geosweep.__version__},
        )
    finally:
        pytorch_logger.setLevel(level)
    (path / CONFIG_FILE).write_text(dump_yaml(config))  # not as MLflow's extra_files: they print a progress bar


def logged_model(client: MlflowClient, experiment_id: str, run_id: str) -> LoggedModel | None:
    """The run's LoggedModel named MODEL_NAME (READY, or PENDING where a delivery was cut off), or None."""
    query = f"source_run_id = '{run_id}' AND name = '{MODEL_NAME}'"
    found = client.search_logged_models([experiment_id], filter_string=query, max_results=1)
    return found[0] if found else None


def deliver(client: MlflowClient, run_id: str, path: str, step: int) -> None:
    """Log the model saved at `path` as the run's LoggedModel, as `mlflow.pytorch.log_model` would.

    Created PENDING with the run's params and axis tags, linked to the run as its output at `step`, its
    files uploaded, the run's metrics of `step` linked to it (the Models tab shows them), then READY.
    Each step may be repeated (a delivery retried after an outage, or a restarted attempt's).
    """
    run = client.get_run(run_id)
    model = logged_model(client, run.info.experiment_id, run_id)
    if model is None:
        axes = {key: value for key, value in run.data.tags.items() if key.startswith("axis.")}
        model = client.create_logged_model(
            run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id, params=run.data.params, tags=axes
        )
    elif model.status == LoggedModelStatus.READY:
        return
    outputs = run.outputs.model_outputs if run.outputs else []
    if model.model_id not in {output.model_id for output in outputs}:
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    mlmodel = read_mlmodel(Path(path))  # names its LoggedModel and run, as the MLmodel log_model writes does
    mlmodel.model_id, mlmodel.run_id, mlmodel.artifact_path = model.model_id, run_id, model.artifact_location
    mlmodel.save(str(Path(path) / MLMODEL))
    client.log_model_artifacts(model.model_id, path)
    linked = [
        Metric(m.key, m.value, m.timestamp, m.step, model_id=model.model_id, run_id=run_id)
        for key in run.data.metrics
        if not key.startswith("system/")  # the system monitor's steps count samples, not epochs
        for m in client.get_metric_history(run_id, key)
        if m.step == step and m.model_id is None
    ]
    for start in range(0, len(linked), 1000):  # MLflow's per-batch limit
        client.log_batch(run_id, metrics=linked[start : start + 1000])
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)


def model_uri(text: str) -> str:
    """The MLflow URI `text` names: a bare run id is its run's model; URIs and paths are taken as they are.

    Raises:
        ModelError: `text` is none of those (MODEL_URI_HELP).
    """
    if RUN_ID.fullmatch(text):
        return f"runs:/{text}/{MODEL_NAME}"
    if SCHEME.match(text) or Path(text).exists():
        return text
    raise ModelError(f"MODEL_URI {text!r}: expected {MODEL_URI_HELP}")


def download(uri: str, tracking_uri: str) -> tuple[Path, MlflowModel, dict[str, Any]]:
    """The geosweep model at `uri` as a local directory, its MLmodel and the run config it was trained with.

    Raises:
        ModelError: nothing at `uri`, not an MLflow model, or one that carries no geosweep config.
    """
    try:
        # MLflow resolves models:/ URIs through its process-wide tracking URI, whatever download_artifacts is given.
        with _use_tracking_uri(tracking_uri):
            local = Path(mlflow.artifacts.download_artifacts(uri, tracking_uri=tracking_uri))
        mlmodel = read_mlmodel(local)
    except (MlflowException, OSError) as err:
        message = getattr(err, "message", str(err))
        raise ModelError(f"{uri}: no MLflow model there ({message}); expected {MODEL_URI_HELP}") from None
    config_file = local / mlmodel.metadata.get("geosweep_config", CONFIG_FILE) if mlmodel.metadata else None
    if config_file is None or not config_file.is_file():
        raise ModelError(
            f"{uri}: an MLflow model without a geosweep config: expected metadata geosweep_config naming its "
            f"{CONFIG_FILE}, as geosweep train and geosweep sweep log their models"
        )
    return local, mlmodel, load_yaml(config_file.read_text())


def read_mlmodel(path: Path) -> MlflowModel:
    """The MLmodel file of the model directory at `path` (MlflowModel.load would copy it first, with a progress bar).

    Raises:
        ModelError: `path` holds no MLmodel file.
    """
    try:
        return MlflowModel.from_dict(yaml.safe_load((path / MLMODEL).read_text()))
    except OSError:
        raise ModelError(f"{path}: not an MLflow model directory: expected an {MLMODEL} file in it") from None
