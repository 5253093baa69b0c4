"""The GPU path: one whole GPU per worker, nccl, CUDA tensors, bf16 autocast (skipped without CUDA)."""

import pytest
import torch
from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.train.launch import run_training

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


def test_gpu_run_uses_nccl_and_cuda(ray_local, mlflow_uri, tiny_config, tmp_path):
    tiny_config.update(
        scaling={"num_workers": torch.cuda.device_count(), "use_gpu": True, "cpus_per_worker": 1},
        precision="bf16",
    )
    result = run_training(parse_run_config(tiny_config), storage_path=tmp_path / "ray")
    assert result.metrics["epoch"] == 2
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.data.tags["device"].startswith("cuda")
    assert run.data.tags["ddp.backend"] == "nccl"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    # MLflow's monitor samples the node's GPUs through nvidia-ml-py (the `gpu` extra) into the run.
    gpu_metrics = [key for key in run.data.metrics if key.startswith("system/gpu_0_")]
    assert "system/gpu_0_utilization_percentage" in gpu_metrics, "no GPU system metrics: pip install 'geosweep[gpu]'"
