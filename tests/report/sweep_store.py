"""A real MLflow store holding a finished sweep (parent + trial runs) and a nightly history, built in about a second.

It is written with the functions a sweep uses (its parent run, each trial's
run with the parent and trial-id tags, per-epoch logging), without Ray: the
numbers are made up but shaped like a real sweep's; one trial failed.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from geosweep.comparison.rows import run_rows
from geosweep.config import load_run_config
from geosweep.nightly import store
from geosweep.sweep.config import SweepConfig, trial_config
from geosweep.sweep.leaderboard import leaderboard
from geosweep.sweep.naming import keep_unique, trial_run_name
from geosweep.sweep.parent import record_summary
from geosweep.sweep.run import start_parent_run, trial_runs
from geosweep.sweep.space import label
from geosweep.tracking import EpochLogger, end_run, start_run
from geosweep.tracking.mlflow_run import experiment_id

BASE = Path(__file__).parents[2] / "configs/train/shapes_pointnet_tinv.yaml"  # never trained here: only recorded
REPRESENTATIONS = ("raw", "tinv_mds")
TRAIN_ROTATIONS = ("z", "so3")
SEEDS = 2


def fresh_store(factory: pytest.TempPathFactory, directory: Path) -> str:
    """A new, empty SQLite store in `directory`: a copy of one migrated once per test session.

    Creating the schema runs MLflow's migrations: seconds on a busy 2-core machine; a copy takes milliseconds.

    Returns:
        Its tracking URI.
    """
    template = factory.getbasetemp() / "mlflow-template.db"
    if not template.exists():
        MlflowClient(f"sqlite:///{template}").search_experiments()
    shutil.copy(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


def trial_metrics(representation: str, train: str, seed: int, epoch: int) -> dict[str, float]:
    """Raw coordinates fit z-rotated data and collapse under SO(3); invariant ones do not care."""
    invariant = representation != "raw"
    so3 = 0.8 if invariant or train == "so3" else 0.25
    return {
        "train_loss": 2.0 / epoch,
        "val_acc": 0.5 + 0.1 * epoch + 0.01 * seed - (0.05 if invariant else 0),
        "test_acc/none": 0.9 - 0.02 * seed,
        "test_acc/z": 0.88 + 0.01 * seed,
        "test_acc/so3": so3 + 0.01 * seed,
        "invariance/max_logit_diff": 1e-6 * (1 + seed) if invariant else 3.0 + seed,
        "invariance/pred_agreement": 1.0 if invariant else 0.4,
    }


def build_sweep(uri: str, name: str = "ui-sweep") -> tuple[str, list[str]]:
    """A sweep over representation x training rotation x 2 seeds (8 trials of 3 epochs).

    Trial raw/so3/seed 1 failed before its first epoch, as a trial that raises in set-up does.

    Its trial runs carry readable names (geosweep.sweep.naming), and its parent the summary a sweep's driver
    records (geosweep.sweep.parent: best configuration, the leaderboard as description and table).

    Returns:
        (parent run id, the trial runs' names).
    """
    base = load_run_config(BASE, ["epochs=3", "tracking.experiment=report-tests", f"tracking.tracking_uri={uri}"])
    sweep = SweepConfig.model_validate(
        {
            "name": name,
            "base": base.model_dump(mode="json"),
            "seeds": SEEDS,
            "space": {
                "representation": {"grid": [{"name": r} for r in REPRESENTATIONS]},
                "dataset.rotation.train": {"grid": list(TRAIN_ROTATIONS)},
            },
        }
    )
    parent_run_id = start_parent_run(sweep)
    client = MlflowClient(uri)
    names, sampled = [], {}
    for i, (representation, train, seed) in enumerate(
        itertools.product(REPRESENTATIONS, TRAIN_ROTATIONS, range(SEEDS))
    ):
        values = {"representation": {"name": representation}, "dataset.rotation.train": train, "seed": seed}
        config = trial_config(sweep, values)
        trial_id = f"run_trial_{i:05d}"
        sampled[trial_id] = {path: label(value) for path, value in values.items()}  # as Tune samples them
        tags = {"mlflow.parentRunId": parent_run_id, "sweep.name": name, "sweep.trial_id": trial_id}
        _, run_id = start_run(config, trial_run_name(sweep, values), tags)
        names.append(keep_unique(client, run_id, parent_run_id, trial_id))
        logger = EpochLogger(uri, run_id)
        failed = (representation, train, seed) == ("raw", "so3", 1)
        for epoch in range(1, 1 if failed else config.epochs + 1):
            metrics = trial_metrics(representation, train, seed, epoch)
            logger.log_epoch_once(epoch, {k: v for k, v in metrics.items() if "/" not in k})
        if not failed:
            logger.log_metrics(config.epochs, {k: v for k, v in metrics.items() if "/" in k})
        logger.close()
        end_run(uri, run_id, succeeded=not failed)
    board = leaderboard(sweep, run_rows(trial_runs(client, parent_run_id)), sampled)
    record_summary(client, parent_run_id, sweep, board)
    client.set_terminated(parent_run_id, "FAILED")
    return parent_run_id, names


def build_nightly(uri: str, dates: tuple[str, ...] = ("2026-01-01", "2026-01-02", "2026-01-03")) -> None:
    """Nights as the nightly job records them: a parent holding the suite, a child per entry.

    The suite tracks val_acc and samples_per_sec; train_loss is logged but not tracked.
    """
    client = MlflowClient(uri)
    experiment = experiment_id(client, "nightly")
    for day, date in enumerate(dates):
        night = client.create_run(experiment, run_name=f"smoke-{date}", tags={store.PARENT: "true", store.DATE: date})
        suite = "tolerances: {val_acc: {max_drop: 0.05}, samples_per_sec: {max_drop_frac: 0.3}}\n"
        client.log_text(night.info.run_id, suite, "suite.yaml")
        for k, entry in enumerate(("pointnet-tinv_mds", "pointnet-raw")):
            tags = {"mlflow.parentRunId": night.info.run_id, store.DATE: date, store.ENTRY: entry}
            run = client.create_run(experiment, run_name=f"{entry}-{date}", tags=tags)
            metrics = {
                "val_acc": 0.8 + 0.01 * day - 0.05 * k,
                "samples_per_sec": 1000.0 - 10 * day + 100 * k,
                "train_loss": 0.1,
            }
            for metric, value in metrics.items():
                client.log_metric(run.info.run_id, metric, value)
            client.set_terminated(run.info.run_id)
        client.set_terminated(night.info.run_id)


def shared_store(factory: pytest.TempPathFactory) -> dict:
    """The test session's store with sweep `ui-sweep` and a nightly history, built on first use; read it only.

    Returns:
        {"uri": tracking URI, "parent_run_id": the sweep's parent, "names": its trial runs' names}.
    """
    directory = factory.getbasetemp() / "report-store"
    built = directory / "built.json"
    if not built.exists():
        directory.mkdir(exist_ok=True)
        uri = fresh_store(factory, directory)
        parent_run_id, names = build_sweep(uri)
        build_nightly(uri)
        built.write_text(json.dumps({"uri": uri, "parent_run_id": parent_run_id, "names": names}))
    return json.loads(built.read_text())
