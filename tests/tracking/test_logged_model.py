"""A run's final model as MLflow holds it: a LoggedModel of its run, reloaded unchanged in a new process."""

import os
import subprocess
import sys

import mlflow.pytorch
import numpy as np
import pytest
import torch
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

import geosweep
from geosweep.config import parse_run_config
from geosweep.data.shapes import CLASSES
from geosweep.model import build_model
from geosweep.registry import BACKBONES, HYPERNETS, REPRESENTATIONS
from geosweep.tracking import EpochLogger, start_run
from geosweep.tracking.logged_model import ModelError, download, logged_model, model_uri, save
from logged_models import log_run, tiny_config, trained
from tiny_sizes import TINY_BACKBONES, TINY_HYPERNET, TINY_REPRESENTATIONS

CLASSIFIERS = [name for name in BACKBONES.names() if BACKBONES.kind(name) == "classification"]
# Each registered component once (a new one is covered for free); TSP's attention model is reloaded below.
COMPONENTS = [
    *((backbone, "raw", "none") for backbone in CLASSIFIERS),
    *(("pointnet", representation, "none") for representation in REPRESENTATIONS.names()),
    *(("pointnet", "tinv_mds", hypernet) for hypernet in HYPERNETS.names() if hypernet != "none"),
]

# A new interpreter that has geosweep installed and imports nothing of it itself: MLflow's loader does.
RELOAD = """
import sys
import mlflow.pytorch, numpy as np, torch
torch.set_num_threads(1)
model = mlflow.pytorch.load_model(sys.argv[1])
inputs = {name: torch.from_numpy(array) for name, array in np.load(sys.argv[2]).items()}
with torch.no_grad():
    outputs = model(**inputs)
np.savez(sys.argv[3], *(outputs if isinstance(outputs, tuple) else (outputs,)))
print(type(model).__module__, type(model).__name__)
"""


@pytest.mark.parametrize("task, model_class", [("classification", "InvariantModel"), ("tsp", "TourModel")])
def test_the_logged_model_reloads_in_a_new_process_and_gives_the_same_outputs(tmp_path, task, model_class):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri, task)
    training = trained(config)
    batch = training.task.example_inputs(5)  # more instances than the two the signature was taken from
    training.model.eval()
    with torch.no_grad():
        expected = training.model(**batch)
    expected = expected if isinstance(expected, tuple) else (expected,)
    run_id = log_run(config, training, {"val_loss": 1.0})
    np.savez(tmp_path / "batch.npz", **{name: tensor.numpy() for name, tensor in batch.items()})

    done = subprocess.run(
        [sys.executable, "-c", RELOAD, f"runs:/{run_id}/model", str(tmp_path / "batch.npz"), str(tmp_path / "out.npz")],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["geosweep.model", model_class]
    reloaded = np.load(tmp_path / "out.npz")
    assert len(reloaded.files) == len(expected)
    for index, output in enumerate(expected):  # logits; or tours and their log-likelihoods
        assert np.array_equal(reloaded[f"arr_{index}"], output.numpy()), index


@pytest.mark.parametrize("backbone, representation, hypernet", COMPONENTS)
def test_every_registered_component_saves_as_an_mlflow_model_and_loads_back_unchanged(
    tmp_path, backbone, representation, hypernet
):
    config = parse_run_config({
        "dataset": {"name": "shapes"},
        "representation": {"name": representation, "kwargs": TINY_REPRESENTATIONS.get(representation, {})},
        "backbone": {"name": backbone, "kwargs": TINY_BACKBONES[backbone]},
        "hypernet": {"name": hypernet, "kwargs": {} if hypernet == "none" else TINY_HYPERNET},
        "epochs": 1,
    })  # fmt: skip  # one line per config section
    torch.manual_seed(0)
    model = build_model(config, dim=3, out_dim=4).eval()
    points = torch.randn(3, 24, 3) * torch.tensor([4.0, 2.0, 1.0])  # anisotropic: well-defined frames
    with torch.no_grad():
        expected = model(points)
    save(model, {"points": points}, config, tmp_path / "model")
    with torch.no_grad():
        assert torch.equal(mlflow.pytorch.load_model(str(tmp_path / "model"))(points), expected)


def test_the_model_is_its_runs_logged_model_with_metrics_signature_config_and_requirements(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri)
    run_id = log_run(config, trained(config), {"val_acc": 0.25, "test_acc/so3": 0.5})

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    model = logged_model(client, run.info.experiment_id, run_id)
    assert (model.name, model.status, model.source_run_id) == ("model", LoggedModelStatus.READY, run_id)
    assert [(output.model_id, output.step) for output in run.outputs.model_outputs] == [(model.model_id, 1)]
    # What the UI's Models tab compares models by: the run's final metrics, its params and its axes.
    assert {metric.key: metric.value for metric in model.metrics} == {"val_acc": 0.25, "test_acc/so3": 0.5}
    assert model.params["backbone.name"] == "pointnet" and model.tags["axis.representation"] == "tinv_mds"
    # The run's own metric history is not doubled by the link.
    assert [m.step for m in client.get_metric_history(run_id, "val_acc")] == [1]

    local, mlmodel, raw = download(f"models:/{model.model_id}", uri)
    assert parse_run_config(raw) == config
    assert (mlmodel.model_id, mlmodel.run_id) == (model.model_id, run_id)
    assert {spec.name: spec.shape for spec in mlmodel.signature.inputs.inputs} == {"points": (-1, 64, 3)}
    assert {spec.name: spec.shape for spec in mlmodel.signature.outputs.inputs} == {"logits": (-1, len(CLASSES))}
    assert (local / "input_example.json").exists()
    requirements = (local / "requirements.txt").read_text().split()
    assert f"geosweep=={geosweep.__version__}" in requirements
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements


def test_a_restarted_attempt_finishes_the_model_a_dead_one_left_pending_and_logs_no_second(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri)
    training = trained(config)
    _, run_id = start_run(config, "restarted")
    client = MlflowClient(uri)
    experiment = client.get_run(run_id).info.experiment_id
    # What an attempt that died while uploading leaves behind: its run's LoggedModel, still PENDING.
    pending = client.create_logged_model(experiment, name="model", source_run_id=run_id)
    for _ in range(2):  # the restarted attempt, then one more
        with EpochLogger(uri, run_id) as logger:
            logger.log_model_once(training.model, training.task.example_inputs(2), config, step=1)

    models = client.search_logged_models([experiment])
    assert [(m.model_id, m.status) for m in models] == [(pending.model_id, LoggedModelStatus.READY)]
    assert len(client.get_run(run_id).outputs.model_outputs) == 1


def test_a_model_uri_is_a_run_id_an_mlflow_uri_or_a_path_and_anything_else_is_refused(tmp_path):
    run_id = "0123456789abcdef0123456789abcdef"
    assert model_uri(run_id) == f"runs:/{run_id}/model"
    for uri in (f"runs:/{run_id}/model", "models:/geosweep-quickstart@best", "models:/m-0123", str(tmp_path)):
        assert model_uri(uri) == uri
    with pytest.raises(ModelError, match=r"MODEL_URI 'best-model': expected a run id, runs:/RUN_ID/model, models:/"):
        model_uri("best-model")
