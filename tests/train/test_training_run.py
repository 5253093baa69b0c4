"""A real 2-worker DDP run on a local Ray, recorded in a real MLflow store."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import ray
import yaml
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from geosweep import cli
from geosweep.config import parse_run_config
from geosweep.data.shapes import CLASSES
from geosweep.ray_local import RAY_LOGS_ENV
from geosweep.registry import DATASETS
from geosweep.tracking.datasets import run_datasets
from geosweep.tracking.logged_model import logged_model
from geosweep.train.launch import REPORT_POLL_ENV, REPORT_POLL_S, run_training

pytestmark = pytest.mark.integration

EPOCH_METRICS = [
    "train_loss",
    "val_acc",
    "val_mean_class_acc",  # mean per-class accuracy, summed over the 2 DDP ranks' shards
    "test_acc",
    "test_mean_class_acc",
    "epoch_seconds",
    "samples_per_sec",
]


def only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, f"expected one MLflow run, found {len(runs)}"
    return client, runs[0]


def dataset_inputs(client: MlflowClient, run_id: str) -> dict[str, tuple[str, str]]:
    """context -> (name, digest) of the run's dataset inputs, failing on a context held twice."""
    inputs = client.get_run(run_id).inputs.dataset_inputs
    contexts = [tag.value for given in inputs for tag in given.tags if tag.key == "mlflow.data.context"]
    assert len(contexts) == len(set(contexts)) == len(inputs), contexts
    return {
        context: (given.dataset.name, given.dataset.digest) for context, given in zip(contexts, inputs, strict=True)
    }


def test_local_ray_binds_loopback(ray_local):
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


@ray.remote(num_cpus=0)
def page_faults_allocating(megabytes: int, times: int) -> int:
    """Minor page faults while this Ray worker allocates, fills and frees a tensor `times` times."""
    import resource

    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(megabytes * 2**18)  # float32: 4 bytes each
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    "[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text(), reason="no huge pages here"
)
def test_local_ray_workers_get_large_tensors_without_a_page_fault_per_4_kb(ray_local):
    # Over 32 MB glibc maps every allocation afresh: 10,240 faults per 40 MB with 4 KB pages, far fewer with 2 MB ones.
    assert ray.get(page_faults_allocating.remote(megabytes=40, times=10)) < 10 * 10_240 / 4  # here: 5,400 vs 102,000


@ray.remote(num_cpus=0)
def page_faults_per_tsp_step(steps: int) -> list[int]:
    """Minor page faults of each of `steps` REINFORCE steps of Kool's TSP20 model, in a thread as Train runs one."""
    import resource
    import threading

    import torch

    from geosweep.config import load_run_config
    from geosweep.model import build_model

    config = load_run_config(Path(__file__).parents[2] / "configs" / "train" / "tsp20_am_kool.yaml", [])
    model = build_model(config, dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)
    faults = []

    def train() -> None:
        for _ in range(steps):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            _, log_likelihood = model(torch.rand(config.batch_size, 20, 2), decode="sample")
            optimizer.zero_grad()
            log_likelihood.mean().backward()
            optimizer.step()
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    return faults


def test_local_ray_workers_keep_freed_memory_for_the_next_step(ray_local):
    # With hugetlb=1 alone glibc trimmed the freed heap: these 6 steps faulted 9,038 pages in afresh here.
    faults = ray.get(page_faults_per_tsp_step.remote(steps=8))
    assert sum(faults[2:]) < 1_000, faults


def test_two_worker_run_records_params_metrics_tags_artifacts(
    ray_local, mlflow_uri, tiny_config, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv(REPORT_POLL_ENV, raising=False)  # the platform's default, not a user's

    class ControllerEnvironment(ray.train.UserCallback):  # local: pickled by value into the controller's process
        """Runs in Train's controller process: writes down the report-poll interval that process was given."""

        def __init__(self, path: Path) -> None:
            self.path = path

        def after_report(self, run_context, metrics, checkpoint) -> None:
            self.path.write_text(os.environ.get(REPORT_POLL_ENV, "unset"))

    tiny_config["tracking"] = {"experiment": "tests", "system_metrics_interval_s": 0.5}
    config = parse_run_config(tiny_config)
    seen = tmp_path / "controller-interval"
    result = run_training(config, storage_path=tmp_path / "ray", callbacks=[ControllerEnvironment(seen)])
    assert result.error is None
    # Train's controller drains reports this often, not every 2 s: a short epoch is not held back by it.
    assert seen.read_text() == REPORT_POLL_S

    client, run = only_run(mlflow_uri, "tests")
    assert run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    assert params["representation.name"] == "tinv_mds"
    assert params["backbone.kwargs.point_widths"] == "[16, 32]"
    assert params["dataset.rotation.test"] == "so3"
    assert params["epochs"] == "2"
    for metric in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1, 2], metric
    assert {
        "axis.representation": "tinv_mds",
        "axis.backbone": "pointnet",
        "axis.hypernet": "none",
        "axis.dataset": "shapes",
        "world_size": "2",
        "batch.per_worker": "8",
        "batch.effective": "16",
        "seed": "0",
    }.items() <= tags.items()
    for key in ["git.sha", "git.dirty", "version.torch", "version.ray", "version.mlflow", "version.geosweep"]:
        assert tags[key], key
    # The MLflow UI's User and Version columns (the test runs from a git checkout).
    assert tags["mlflow.user"] and tags["mlflow.source.git.commit"] == tags["git.sha"] != "unknown"

    # Before training (step 0): representation cost and where a single frame is ambiguous.
    before = {k: v for k, v in run.data.metrics.items() if k.startswith(("repr/", "cache/"))}
    assert {
        "repr/seconds",
        "repr/ambiguous_sign_frac",
        "repr/small_eigengap_frac",
        "repr/median_rel_eigengap",
        "cache/misses",
        "cache/hits",
        "cache/build_seconds",
    } <= set(before)
    assert before["cache/misses"] == 3  # train, val, test frames built once, by rank 0
    # After training: the rotation-robustness table and the invariance certificate.
    final = run.data.metrics
    assert {"test_acc/none", "test_acc/z", "test_acc/so3"} <= set(final)
    # tinv_mds is invariant: the rotated copies get the same predictions, but for a float32 near-tie
    # of a frame on at most one cloud (the flagged fractions are far looser: they mark frames that a
    # 1 % deformation would move, not ones that round-off does).
    one_cloud = 1 / (len(CLASSES) * tiny_config["dataset"]["kwargs"]["test_per_class"])
    assert final["invariance/pred_agreement"] >= 1 - one_cloud
    assert abs(final["test_acc/so3"] - final["test_acc/z"]) <= one_cloud + 1e-9

    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}
    logged_config = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml")).read_text())
    assert parse_run_config(logged_config) == config
    checkpoint = result.checkpoint
    assert checkpoint is not None

    # The final model, logged by rank 0 of the DDP run: `geosweep evaluate` scores it in one process with the
    # task's own evaluation, and gets the run's final numbers (val_acc was scored over both ranks' shards).
    assert logged_model(client, run.info.experiment_id, run.info.run_id).status == LoggedModelStatus.READY
    monkeypatch.setenv("GEOSWEEP_CACHE_DIR", str(tmp_path / "evaluate-cache"))
    capsys.readouterr()
    assert cli.main(["evaluate", run.info.run_id]) == 0
    printed = dict(re.findall(r"^  (\S+)\s+(\S+)$", capsys.readouterr().out, re.MULTILINE))
    assert {"val_acc", "test_acc/so3", "invariance/pred_agreement"} <= printed.keys() <= final.keys()
    assert {k: float(v) for k, v in printed.items()} == pytest.approx({k: final[k] for k in printed}, rel=1e-5)

    # Its datasets, digests made by rank 0 from the arrays it trained on; the same here from the same config.
    data = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
    expected = {context: (d.name, d.digest) for context, d in run_datasets(config, data).items()}
    assert dataset_inputs(client, run.info.run_id) == expected
    assert set(expected) == {"training", "validation", "test", "test/none", "test/z", "test/so3"}
    # System metrics from MLflow's monitor on rank 0, from the start of training to its end.
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")]
    assert len(steps) >= 2 and sorted(steps) == list(range(len(steps))), steps
    assert "system/system_memory_usage_megabytes" in final


def test_worker_death_resumes_from_checkpoint_in_the_same_run(ray_local, mlflow_uri, tiny_config, tmp_path):
    tiny_config.update(epochs=3, failure={"max_failures": 1})
    marker = tmp_path / "rank1-died"
    result = run_training(
        parse_run_config(tiny_config),
        storage_path=tmp_path / "ray",
        inject_failure={"rank": 1, "epoch": 2, "marker": str(marker), "delay_s": 1.0},
    )
    assert marker.exists(), "the injected failure never fired"
    assert result.error is None
    assert result.metrics["epoch"] == 3

    client, run = only_run(mlflow_uri, "tests")
    assert run.info.status == "FINISHED"
    assert run.data.tags["resumed_from_epoch"] == "1", "the restarted workers did not load the checkpoint"
    for metric in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1, 2, 3], metric
    assert len(dataset_inputs(client, run.info.run_id)) == 6  # both attempts logged them: each context once
    # The restarted attempt's monitor continued the run's system-metric steps.
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")]
    assert steps and len(steps) == len(set(steps)), steps


def test_worker_death_without_retries_fails_the_run_and_keeps_what_was_logged(
    ray_local, mlflow_uri, tiny_config, tmp_path
):
    tiny_config.update(epochs=3, failure={"max_failures": 0})
    with pytest.raises(ray.train.TrainingFailedError):
        run_training(
            parse_run_config(tiny_config),
            storage_path=tmp_path / "ray",
            inject_failure={"rank": 1, "epoch": 2, "marker": str(tmp_path / "died")},
        )

    client, run = only_run(mlflow_uri, "tests")
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]


def console_until(capfd, line: str, timeout_s: float = 60) -> str:
    """What reached this process's stdout and stderr until `line` did (Ray forwards worker output asynchronously)."""
    seen, deadline = "", time.monotonic() + timeout_s  # a hang guard: the line normally arrives within a second
    while line not in seen and time.monotonic() < deadline:
        time.sleep(0.2)
        out, err = capfd.readouterr()
        seen += out + err
    time.sleep(1.0)  # anything the run printed before that line has arrived by now
    out, err = capfd.readouterr()
    return seen + out + err


def test_same_seed_gives_same_losses_through_the_cli(ray_local, mlflow_uri, tiny_config, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)  # checkpoints go under the working directory by default
    monkeypatch.setenv(RAY_LOGS_ENV, "0")  # --ray-logs sets it; restored after the test
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**tiny_config, "epochs": 3}))

    assert cli.main(["train", str(path)]) == 0
    quiet = console_until(capfd, "epoch 3/3: ")
    assert "MLflow run " in quiet and "epoch 1/3: train_loss=" in quiet and "val_acc=" in quiet
    assert [quiet.count(f"epoch {epoch}/3: ") for epoch in (1, 2, 3)] == [1, 1, 1]  # each line once
    assert "PreemptionWatcher" not in quiet  # a local Ray starts no watcher, nor its error line, per run
    assert "Reporting training result" not in quiet and "Checkpoint successfully created" not in quiet
    assert cli.main(["train", str(path), "--ray-logs"]) == 0
    assert "Reporting training result" in console_until(capfd, "epoch 3/3: ")

    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    losses = [[m.value for m in client.get_metric_history(r.info.run_id, "train_loss")] for r in runs]
    assert len(losses) == 2 and len(losses[0]) == 3
    assert losses[0] == losses[1]
    # Each run kept the two checkpoints resuming needs (of three), under ./ray_results, not the home directory.
    for run in runs:
        kept = [path for path in (tmp_path / "ray_results" / run.info.run_name).glob("checkpoint_*") if path.is_dir()]
        assert len(kept) == 2, kept
    # The second run read the first run's cached representation.
    first, second = sorted(runs, key=lambda r: r.info.start_time)
    assert (first.data.metrics["cache/misses"], second.data.metrics["cache/hits"]) == (3, 3)
    assert second.data.metrics["cache/misses"] == 0
