"""The CUDA path end to end: `geosweep train` on one GPU in fp32 and bf16, beside a plain PyTorch loop there.

For a point-cloud classification run (DGCNN on tinv_mds) and a TSP run (Kool et
al.'s attention model, 3 layers x 128, 8 heads, rollout baseline) it trains
through Ray Train with `use_gpu: true`, reads back what MLflow recorded (the
device, the DDP backend, samples/s per epoch, the last validation figure) and
trains the classification model in a plain one-process loop on the same GPU.

    python -m geosweep.bench.gpu [--epochs 4] [--only classification|tsp]

Prints samples/s per run, bf16 / fp32, and geosweep / plain epoch time (goal <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from geosweep.bench.overhead import geosweep_train
from geosweep.bench.plain import train_in_process
from geosweep.config import apply_overrides, load_run_config, parse_run_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "train"
ON_ONE_GPU = ["scaling.num_workers=1", "scaling.use_gpu=true", "scaling.cpus_per_worker=4"]


@dataclass(frozen=True)
class Case:
    """One workload: a shipped config and the overrides that size it for a GPU."""

    config: Path
    overrides: list[str]
    quality: str  # the validation metric printed beside the throughput


CASES = {
    "classification": Case(
        CONFIGS / "shapes_pointnet_tinv.yaml",
        [
            "backbone={name: dgcnn, kwargs: {dropout: 0.5}}",
            "dataset.kwargs={num_points: 1024, train_per_class: 256, val_per_class: 32, test_per_class: 32}",
            "batch_size=32",
        ],
        "val_acc",
    ),
    "tsp": Case(
        CONFIGS / "tsp20_am_tinv.yaml",
        [
            "dataset.kwargs={num_nodes: 50, val_size: 2000, test_size: 2000}",
            "backbone.kwargs={embed_dim: 128, num_layers: 3, num_heads: 8, ff_hidden: 512}",
            "task.kwargs={baseline: rollout, epoch_size: 51200, baseline_eval_size: 5000}",
            "batch_size=512",
        ],
        "val_gap",
    ),
}


@dataclass(frozen=True)
class GpuRun:
    """What MLflow recorded for one `geosweep train` run."""

    device: str
    backend: str
    samples_per_sec: float  # median over epochs after the first
    epoch_seconds: float  # median training phase after the first epoch
    quality: float  # the case's validation metric at the last epoch


def run_case(case: Case, precision: str, epochs: int, workdir: Path) -> GpuRun:
    """`geosweep train` of `case` on one GPU at `precision`."""
    overrides = [*case.overrides, *ON_ONE_GPU, f"precision={precision}", f"epochs={epochs}"]
    client, run, _ = geosweep_train(case.config, overrides, workdir)
    history = {name: client.get_metric_history(run.info.run_id, name) for name in ("samples_per_sec", "epoch_seconds")}
    return GpuRun(
        device=run.data.tags.get("device", "?"),
        backend=run.data.tags.get("ddp.backend", "?"),
        samples_per_sec=statistics.median(m.value for m in history["samples_per_sec"][1:]),
        epoch_seconds=statistics.median(m.value for m in history["epoch_seconds"][1:]),
        quality=run.data.metrics.get(case.quality, float("nan")),
    )


def plain_epoch_seconds(case: Case, precision: str, epochs: int) -> float:
    """Median training-phase seconds of `case` in the plain loop on this process's GPU (first epoch left out)."""
    overrides = [*case.overrides, f"precision={precision}", f"epochs={epochs}"]
    config = parse_run_config(apply_overrides(load_run_config(case.config).model_dump(mode="json"), overrides))
    return statistics.median(epoch.train_seconds for epoch in train_in_process(config, device="cuda").epochs[1:])


def main() -> None:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", choices=list(CASES), nargs="+", default=list(CASES))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("geosweep.bench.gpu needs a CUDA GPU (torch.cuda.is_available() is False)")
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    for name in args.only:
        case = CASES[name]
        runs = {}
        for precision in ("fp32", "bf16"):
            with tempfile.TemporaryDirectory() as tmp:
                runs[precision] = run = run_case(case, precision, args.epochs, Path(tmp))
            print(
                f"{name} {precision}: device {run.device}, backend {run.backend}, "
                f"{run.samples_per_sec:.0f} samples/s, {run.epoch_seconds:.2f} s/epoch, "
                f"{case.quality} {run.quality:.4f}"
            )
            if name == "classification":
                plain = plain_epoch_seconds(case, precision, args.epochs)
                print(f"  plain PyTorch loop: {plain:.2f} s/epoch; geosweep / plain {run.epoch_seconds / plain:.3f}")
        print(f"{name} bf16 / fp32 throughput: {runs['bf16'].samples_per_sec / runs['fp32'].samples_per_sec:.2f}x")


if __name__ == "__main__":
    main()
