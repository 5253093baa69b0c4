"""`geosweep evaluate`: a logged model scored by its own task, on its data or other data; bad input named."""

import re

import mlflow.pytorch
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from geosweep import cli
from geosweep.config import DatasetSpec
from geosweep.train.evaluate import evaluate
from logged_models import log_run, tiny_config, trained


def printed_metrics(out: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"^  (\S+)\s+(\S+)$", out, re.MULTILINE)}


@pytest.fixture(autouse=True)
def _local_cache(tmp_path, monkeypatch):
    # evaluate uses this machine's representation cache, not the one the model's config names.
    monkeypatch.setenv("GEOSWEEP_CACHE_DIR", str(tmp_path / "evaluate-cache"))


@pytest.mark.parametrize("task", ["classification", "tsp"])
def test_evaluate_prints_the_metrics_the_run_scored_its_model_with(tmp_path, capsys, task):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri, task)
    training = trained(config)
    # What the run's rank 0 scores its model with after the last epoch (the loop's evaluate and final metrics).
    scored = training.task.evaluate() | training.task.final_metrics()
    run_id = log_run(config, training, scored)

    assert cli.main(["evaluate", run_id, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"runs:/{run_id}/model (model m-")
    assert printed_metrics(out) == pytest.approx(scored, rel=1e-5, nan_ok=True)  # printed to 6 digits
    if task == "classification":
        assert {"val_acc", "test_acc/so3", "test_mean_class_acc/z", "invariance/pred_agreement"} <= scored.keys()
    else:
        assert {"val_tour_len", "test_gap/rotated", "invariance/tour_agreement"} <= scored.keys()


def test_evaluate_scores_on_another_protocol_and_logs_into_a_run_linked_to_the_model(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri)
    run_id = log_run(config, trained(config), {"val_acc": 0.0})
    client = MlflowClient(uri)
    evaluations = client.create_run(client.get_run(run_id).info.experiment_id, run_name="evaluations").info.run_id

    model = f"models:/{client.get_run(run_id).outputs.model_outputs[0].model_id}"
    assert cli.main(["evaluate", model, "--tracking-uri", uri, "--set", "dataset.rotation.test=z"]) == 0
    on_z = printed_metrics(capsys.readouterr().out)
    assert cli.main(["evaluate", model, "--tracking-uri", uri, "--log-to", evaluations]) == 0
    out = capsys.readouterr().out
    assert "test rotation so3" in out and f"logged into MLflow run {evaluations}" in out
    on_so3 = printed_metrics(out)
    # The val/test split follows dataset.rotation.test; the robustness table scores every protocol either way.
    assert on_z["test_acc"] == on_z["test_acc/z"] and on_so3["test_acc"] == on_so3["test_acc/so3"]
    assert {k: v for k, v in on_z.items() if "/" in k} == {k: v for k, v in on_so3.items() if "/" in k}

    logged = client.get_run(evaluations)
    assert logged.data.metrics == pytest.approx(on_so3, rel=1e-5)
    assert logged.data.tags["evaluated.model_uri"] == model
    linked = client.get_logged_model(model.removeprefix("models:/")).metrics
    assert {m.key for m in linked if m.run_id == evaluations} == on_so3.keys()


def test_evaluate_scores_on_the_dataset_a_file_gives_alone_or_in_a_run_config(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri)
    run_id = log_run(config, trained(config), {"val_acc": 0.0})
    smaller = {"name": "shapes", "kwargs": {"num_points": 64, "val_per_class": 2, "test_per_class": 1}}
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(smaller))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**config.model_dump(mode="json"), "dataset": smaller}))
    for file in ("dataset.yaml", "run.yaml"):
        evaluation = evaluate(run_id, uri, dataset_file=tmp_path / file)
        assert evaluation.config.dataset == DatasetSpec.model_validate(smaller)  # unrotated, the spec's default
        assert evaluation.metrics["test_acc"] == evaluation.metrics["test_acc/none"]
        assert "on shapes, test rotation none" in evaluation.report().splitlines()[0]


def test_bad_model_uris_and_foreign_models_are_refused_naming_what_was_expected(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny_config(tmp_path, uri)
    run_id = log_run(config, trained(config), {"val_acc": 0.0})
    plain = tmp_path / "plain"
    mlflow.pytorch.save_model(torch.nn.Linear(3, 2), str(plain), serialization_format="pickle")

    def refused(*args: str) -> str:
        assert cli.main(["evaluate", *args, "--tracking-uri", uri]) == 2
        return capsys.readouterr().err

    assert "MODEL_URI 'best': expected a run id, runs:/RUN_ID/model, models:/NAME@ALIAS" in refused("best")
    assert "no MLflow model there" in refused("0123456789abcdef0123456789abcdef")
    assert "no MLflow model there" in refused("models:/geosweep-nothing@best")
    assert "an MLflow model without a geosweep config" in refused(str(plain))
    assert "not an MLflow model directory" in refused(str(tmp_path))
    assert "--log-to 'nope': no such run" in refused(run_id, "--log-to", "nope")
    assert "its weights do not fit" in refused(run_id, "--set", "backbone.kwargs.point_widths=[8, 32]")
    assert "dataset.rotation.test" in refused(run_id, "--set", "dataset.rotation.test=sideways")
