"""Sweep efficiency: ASHA against the full grid (FIFO) on one fixed 16-configuration space, side by side.

The space: representation {raw, tinv_mds} x hypernet {none, mip} x 4 learning
rates, on tiny shapes data, one DDP worker per trial, one seed. Both sweeps run
through `run_sweep` (the `geosweep sweep` path) in the same Ray session, the
grid first.

    python -m geosweep.bench.sweep_efficiency [--epochs 16] [--reduction-factor 4]

Defaults measured on 2 CPUs (2026-12-04): ASHA used 37.9 % of the grid's 256 trial-epochs, found
the grid's best configuration, and took 0.49 of its wall time (grid 24 s, ASHA 12 s). Each trial
trains in its Tune trial's process, which the next trial reuses: a trial's start to its first epoch
takes 0.2 s (median), where with every trial on Ray Train start-up (~30 s) dominated the 0.1 s
epochs and ASHA took 0.78 of the grid's wall. With 9 epochs and reduction factor 3 ASHA used 48.6 %
and missed the best by 5.7 points: asynchronous ASHA lets the first trials through rungs with nothing
to compare.

Prints:
- the fraction of the grid's trial-epochs that ASHA used (goal <= 40 %);
- whether ASHA's best configuration is the grid's best within 1 accuracy point
  (its val_acc after full training in the grid, against the grid's best);
- trial overhead: seconds from a trial's start to its first reported epoch,
  median over each sweep, from Tune's results (time_total_s of the first
  report) and from MLflow (run created -> first epoch logged, the Train part).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient
from ray import tune

from geosweep.sweep.config import SweepConfig
from geosweep.sweep.progress import config_label
from geosweep.sweep.run import run_sweep

LEARNING_RATES = [3e-4, 1e-3, 3e-3, 1e-2]


def sweep_config(name: str, workdir: Path, epochs: int, scheduler: dict) -> SweepConfig:
    """The fixed 16-configuration space on tiny shapes data, with `scheduler`."""
    base = {
        "dataset": {
            "name": "shapes",
            "kwargs": {"num_points": 64, "train_per_class": 16, "val_per_class": 16, "test_per_class": 4},
            "rotation": {"train": "z", "test": "so3"},
        },
        "representation": {"name": "tinv_mds"},
        "backbone": {"name": "pointnet", "kwargs": {"point_widths": [16, 32], "head_widths": [32], "dropout": 0.0}},
        "epochs": epochs,
        "batch_size": 16,
        "scaling": {"num_workers": 1, "cpus_per_worker": 0.9},  # two trials at a time on 2 CPUs
        "seed": 0,
        "cache": {"dir": str(workdir / "repr-cache")},
        "certify": {"samples": 2, "max_clouds": 16},
        "tracking": {"experiment": name, "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}"},
    }
    return SweepConfig.model_validate(
        {
            "name": name,
            "base": base,
            "storage_path": str(workdir / "ray"),
            "scheduler": scheduler,
            "space": {
                "representation": {"grid": [{"name": "raw"}, {"name": "tinv_mds"}]},
                "hypernet": {"grid": [{"name": "none"}, {"name": "mip", "kwargs": {"hidden": [16]}}]},
                "optimizer.lr": {"grid": LEARNING_RATES},
            },
        }
    )


def final_val_acc(results: tune.ResultGrid) -> dict[str, tuple[float, int]]:
    """Configuration label -> (last reported val_acc, epochs trained), for the trials that did not fail."""
    return {config_label(r.config): (r.metrics["val_acc"], r.metrics["epoch"]) for r in results if r.error is None}


def overhead_seconds(results: tune.ResultGrid, sweep: SweepConfig) -> tuple[float, float]:
    """Median seconds from a trial's start to its first epoch: by Tune's clock, and by MLflow's (Train only)."""
    tune_side = [r.metrics_dataframe.sort_values("epoch")["time_total_s"].iloc[0] for r in results if r.error is None]
    client = MlflowClient(sweep.base.tracking.tracking_uri)
    experiment = client.get_experiment_by_name(sweep.base.tracking.experiment).experiment_id
    mlflow_side = []
    for run in client.search_runs([experiment], filter_string="tags.`sweep.trial_id` != ''"):
        first = min(m.timestamp for m in client.get_metric_history(run.info.run_id, "val_acc"))
        mlflow_side.append((first - run.info.start_time) / 1000)
    return statistics.median(tune_side), statistics.median(mlflow_side)


def main() -> None:
    """The command line: the space swept twice, as a full grid (FIFO) and with ASHA, then compared."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=16, help="epochs of a fully trained trial (ASHA's max_t)")
    parser.add_argument("--reduction-factor", type=float, default=4.0)
    parser.add_argument("--grace-period", type=int, default=1)
    args = parser.parse_args()
    asha = {"name": "asha", "grace_period": args.grace_period, "reduction_factor": args.reduction_factor}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, scheduler in (("grid-fifo", {"name": "fifo"}), ("asha", asha)):
            sweep = sweep_config(f"efficiency-{name}", Path(tmp), args.epochs, scheduler)
            began = time.perf_counter()
            results, _ = run_sweep(sweep)
            runs[name] = (sweep, results, time.perf_counter() - began)
        report(runs, args)


def report(runs: dict, args: argparse.Namespace) -> None:
    """Print ASHA against the full grid: trials, trial-epochs, wall time, best configurations, trial overhead."""
    (_, grid_results, grid_s), (_, asha_results, asha_s) = runs["grid-fifo"], runs["asha"]
    grid, asha = final_val_acc(grid_results), final_val_acc(asha_results)
    grid_epochs, asha_epochs = sum(e for _, e in grid.values()), sum(e for _, e in asha.values())
    grid_best = max(grid, key=lambda label: grid[label][0])
    asha_best = config_label(asha_results.get_best_result("val_acc", "max", scope="last").config)
    gap = grid[grid_best][0] - grid[asha_best][0]
    print(
        f"--- 16 configurations, {args.epochs} epochs each, "
        f"ASHA grace {args.grace_period}, reduction {args.reduction_factor:g}"
    )
    print(
        f"trials: grid {len(grid_results)} ({len(grid_results.errors)} failed), "
        f"asha {len(asha_results)} ({len(asha_results.errors)} failed)"
    )
    print(
        f"trial-epochs: grid {grid_epochs}, asha {asha_epochs}: "
        f"ASHA used {asha_epochs / grid_epochs:.1%} of the grid's (goal <= 40%)"
    )
    print(f"wall seconds: grid {grid_s:.0f}, asha {asha_s:.0f} (ratio {asha_s / grid_s:.2f})")
    print(f"grid's best:  {grid_best}: val_acc {grid[grid_best][0]:.4f}")
    print(
        f"ASHA's best:  {asha_best}: val_acc {asha[asha_best][0]:.4f} after {asha[asha_best][1]} epochs; "
        f"{grid[asha_best][0]:.4f} fully trained in the grid"
    )
    print(f"ASHA's best within 1 accuracy point of the grid's best: {gap <= 0.01} (gap {gap * 100:.2f} points)")
    print("ASHA epochs per configuration: " + ", ".join(f"{e}" for _, e in sorted(asha.values(), key=lambda v: -v[1])))
    for name, (sweep, results, _) in runs.items():
        tune_s, mlflow_s = overhead_seconds(results, sweep)
        print(
            f"trial overhead ({name}): trial start -> first epoch, median {tune_s:.1f} s (Tune); "
            f"MLflow run created -> first epoch logged, median {mlflow_s:.1f} s"
        )


if __name__ == "__main__":
    main()
