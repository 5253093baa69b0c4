"""The TinvNN claim in miniature: the same training budget, raw vs invariant inputs, scored on transformed instances.

    python -m geosweep.bench.tsp_invariance [--epochs 4] [--set key=value ...]

Trains configs/train/tsp20_am_tinv.yaml twice on the local Ray (1 worker each), once
with raw (uncentred) coordinates and once with tinv_mds, into a temporary MLflow store, and
prints each run's test gap on the original instances and on every transformed copy.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from geosweep.config import load_run_config
from geosweep.data.tsp import VARIANTS
from geosweep.train.launch import run_training

CONFIG = Path(__file__).parents[3] / "configs" / "train" / "tsp20_am_tinv.yaml"
REPRESENTATIONS = {"raw": "{name: raw, kwargs: {centre: false}}", "tinv_mds": "{name: tinv_mds, kwargs: {scale: rms}}"}


def main() -> None:
    """The command line: train both runs, then print their test gaps side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        rows = {}
        for name, representation in REPRESENTATIONS.items():
            overrides = [
                f"representation={representation}",
                f"epochs={args.epochs}",
                f"tracking.tracking_uri={uri}",
                "tracking.experiment=bench-tsp-invariance",
                "scaling.num_workers=1",
                "scaling.cpus_per_worker=1.5",
                *args.overrides,
            ]
            config = load_run_config(CONFIG, overrides)
            run_training(config, storage_path=Path(tmp) / "ray", run_name=f"bench-{name}")
            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name("bench-tsp-invariance").experiment_id
            [run] = client.search_runs([experiment], filter_string=f"attributes.run_name = 'bench-{name}'")
            rows[name] = run.data.metrics
    columns = ["original", *VARIANTS]
    print(f"TSP20, {args.epochs} epochs of {config.task.kwargs.get('epoch_size')} instances, greedy test gap in %:")
    print(f"{'representation':16}" + "".join(f"{c:>12}" for c in columns) + f"{'tour agree':>12}")
    for name, metrics in rows.items():
        gaps = "".join(f"{metrics[f'test_gap/{c}']:12.2f}" for c in columns)
        print(f"{name:16}{gaps}{metrics['invariance/tour_agreement']:12.3f}")
    raw, tinv = rows["raw"], rows["tinv_mds"]
    print(f"gap on rotated instances, raw / tinv_mds: {raw['test_gap/rotated'] / tinv['test_gap/rotated']:.1f}x")


if __name__ == "__main__":
    main()
