"""LiveMetrics in a real Ray worker, read back from the Prometheus endpoint of Ray's metrics agent."""

from __future__ import annotations

import time
import urllib.request

import pytest
import ray
import torch
from prometheus_client.parser import text_string_to_metric_families

from geosweep.train.live_metrics import RAY_PREFIX, LiveMetrics, prometheus_series

# A worker reports its metrics to the node's agent every 10 s by default; this test's actor every 0.5 s.
FAST_REPORTING = {"env_vars": {"RAY_metrics_report_interval_ms": "500"}}


@ray.remote(num_cpus=0.01, runtime_env=FAST_REPORTING)
class Trainer:
    """Stands in for one rank of the training loop."""

    def __init__(self, trial: str, rank: int) -> None:
        # No flush before the epoch ends: samples/s then covers all of the epoch's steps.
        self.live = LiveMetrics("live-test", trial, rank, flush_interval_s=3600.0)

    def train(self, steps: list[tuple[float, int, float]], epoch: int, on_gpu: bool = False) -> None:
        if on_gpu:
            self.weights = torch.ones(1024, 1024, device="cuda")  # 4 MiB held by this process
        for seconds, samples, loss in steps:
            self.live.step(seconds, samples, torch.tensor(loss))
        self.live.epoch(epoch)


def scrape_series(tags: dict[str, str], wanted: set[str], timeout_s: float = 15.0) -> dict[str, float]:
    """Poll the local node's metrics endpoint until every wanted series carries `tags`.

    The endpoint's port is the node's metrics export port, which `ray.nodes()` reports
    (random unless `ray start --metrics-export-port` fixed it).

    Returns:
        Series name -> value, for the samples labelled with `tags` (buckets as `name{le=bound}`).
    """
    (node,) = [n for n in ray.nodes() if n["Alive"]]
    url = f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"
    deadline = time.monotonic() + timeout_s
    while True:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        found = {
            sample.name + (f"{{le={sample.labels['le']}}}" if "le" in sample.labels else ""): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith(RAY_PREFIX + "geosweep_") and tags.items() <= sample.labels.items()
        }
        names = {name.partition("{")[0] for name in found}
        if wanted <= names or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


@pytest.mark.integration
def test_a_workers_live_metrics_reach_rays_prometheus_endpoint(ray_local):
    trainer = Trainer.remote("trial_0", 1)
    steps = [(0.5, 32, 2.0), (0.25, 32, 1.5), (0.25, 16, 1.25)]
    ray.get(trainer.train.remote(steps, epoch=3))
    cpu_series = prometheus_series() - {RAY_PREFIX + "geosweep_gpu_max_memory_allocated_bytes"}

    found = scrape_series({"experiment": "live-test", "trial": "trial_0", "rank": "1"}, cpu_series)
    ray.kill(trainer)

    names = {name.partition("{")[0] for name in found}
    assert cpu_series <= names, f"missing series: {sorted(cpu_series - names)}"
    assert found["ray_geosweep_samples_per_second"] == pytest.approx(80 / 1.0)  # all samples / all step seconds
    assert found["ray_geosweep_train_loss"] == pytest.approx(1.25)
    assert found["ray_geosweep_epoch"] == 3
    assert found["ray_geosweep_step_seconds_count"] == 3
    # Buckets count exactly; Ray estimates the _sum from bucket midpoints, so it is not asserted.
    assert found["ray_geosweep_step_seconds_bucket{le=0.1}"] == 0
    assert found["ray_geosweep_step_seconds_bucket{le=0.25}"] == 2
    assert found["ray_geosweep_step_seconds_bucket{le=0.5}"] == 3
    assert "ray_geosweep_gpu_max_memory_allocated_bytes" not in found  # this worker never touched CUDA


@pytest.mark.integration
@pytest.mark.gpu
def test_peak_gpu_memory_is_exported_where_cuda_is_used(ray_local):
    trainer = Trainer.options(num_gpus=1).remote("trial_gpu", 0)
    ray.get(trainer.train.remote([(0.1, 8, 1.0)], epoch=1, on_gpu=True))
    series = RAY_PREFIX + "geosweep_gpu_max_memory_allocated_bytes"

    found = scrape_series({"experiment": "live-test", "trial": "trial_gpu", "rank": "0"}, {series})
    ray.kill(trainer)

    assert found[series] >= 4 * 2**20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment": "", "trial": "t", "rank": 0}, "experiment must be a non-empty string"),
        ({"experiment": "e", "trial": None, "rank": 0}, "trial must be a non-empty string"),
        ({"experiment": "e", "trial": "t", "rank": -1}, "rank must be an int >= 0"),
        ({"experiment": "e", "trial": "t", "rank": "0"}, "rank must be an int >= 0"),
    ],
)
def test_bad_tags_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiveMetrics(**kwargs)
