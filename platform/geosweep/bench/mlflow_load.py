"""MLflow under many trials writing at once: N writer processes x M epochs, a SQLite file vs a local `mlflow server`.

Each writer plays a sweep trial's rank 0: the driver creates its run first (as a
sweep does), then the writer logs M epochs through EpochLogger, the write path
of the training loop (one log_batch of the 5 per-epoch metrics per epoch), back
to back: a harsher load than real epochs, which are seconds apart. Afterwards
every value is counted back through MlflowClient.

    python -m geosweep.bench.mlflow_load [--writers 8 16] [--epochs 200]

Prints, for each N and both stores side by side: values written, values lost,
failed writes (e.g. "database is locked") and seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from geosweep.tracking.mlflow_run import EpochLogger, experiment_id
from geosweep.tracking.server import local_server

EPOCH_METRICS = ("train_loss", "val_acc", "test_acc", "epoch_seconds", "samples_per_sec")


@dataclass(frozen=True)
class Load:
    """What one store took under the load."""

    written: int  # metric values the writers logged (or tried to)
    lost: int  # of those, missing when counted back
    errors: int  # failed writes: each would have failed its trial
    seconds: float  # from the first write to the last writer's end
    first_error: str


def write_epochs(uri: str, run_id: str, epochs: int, start, results) -> None:
    """One writer process: log `epochs` epochs into `run_id` once every writer is ready; report (errors, first)."""
    errors: list[str] = []
    try:
        logger = EpochLogger(uri, run_id)
    except Exception as err:  # noqa: BLE001 (counted, not raised: the bench reports every failure)
        logger, errors = None, [f"{type(err).__name__}: {str(err).splitlines()[0]}"] * epochs
    start.wait()
    if logger:
        for epoch in range(1, epochs + 1):
            logger.log_metrics(epoch, {key: epoch + i / 10 for i, key in enumerate(EPOCH_METRICS)})
        try:  # the outbox retries a busy store; what it could not deliver would have failed the trial
            logger.close()
        except Exception as err:  # noqa: BLE001 (counted, not raised: the bench reports every failure)
            errors = [f"{type(err).__name__}: {str(err).splitlines()[0]}"] * logger.undelivered
    results.put((len(errors), errors[0] if errors else ""))


def run_load(uri: str, writers: int, epochs: int) -> Load:
    """`writers` processes, each logging `epochs` epochs into its own run at `uri`, all at once.

    Args:
        uri: the tracking URI (an absolute sqlite:/// file or an http:// server).
        writers: concurrent writer processes, one run each.
        epochs: epochs each writer logs, back to back.

    Returns:
        What was written, lost and failed, and how long the writes took.
    """
    client = MlflowClient(uri)
    experiment = experiment_id(client, "mlflow-load")  # the store and experiment exist before any writer starts
    run_ids = [client.create_run(experiment, run_name=f"writer-{i}").info.run_id for i in range(writers)]
    # Writers fork from a server process that imported the write path once: spawning each
    # would import torch, MLflow and its SQL store again (about 8 s of CPU per process).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["geosweep.tracking.mlflow_run", "mlflow.store.tracking.sqlalchemy_store"])
    start, results = context.Barrier(writers + 1), context.Queue()
    processes = [context.Process(target=write_epochs, args=(uri, run_id, epochs, start, results)) for run_id in run_ids]
    for process in processes:
        process.start()
    start.wait(timeout=300)  # every writer holds its logger: the clock starts with the first write
    began = time.perf_counter()
    outcomes = [results.get(timeout=1800) for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    found = sum(len(client.get_metric_history(run_id, key)) for run_id in run_ids for key in EPOCH_METRICS)
    written = writers * epochs * len(EPOCH_METRICS)
    first_error = next((message for _, message in outcomes if message), "")
    return Load(written, written - found, sum(count for count, _ in outcomes), seconds, first_error)


def main() -> None:
    """The command line: both stores side by side for each number of writers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[8, 16], help="concurrent writer processes (N)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs each writer logs (M)")
    args = parser.parse_args()
    per_epoch = f"{len(EPOCH_METRICS)} metrics per epoch (one log_batch)"
    print(f"{args.epochs} epochs per writer, {per_epoch}, on {os.cpu_count()} cores")
    print(f"{'store':<14} {'writers':>7} {'values':>7} {'lost':>5} {'errors':>6} {'seconds':>8}")
    for writers in args.writers:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = run_load(f"sqlite:///{Path(tmp) / 'mlflow.db'}", writers, args.epochs)
            with local_server(Path(tmp)) as uri:
                server = run_load(uri, writers, args.epochs)
        for store, load in (("sqlite file", sqlite), ("mlflow server", server)):
            print(f"{store:<14} {writers:>7} {load.written:>7} {load.lost:>5} {load.errors:>6} {load.seconds:>8.1f}")
            if load.first_error:
                print(f"  first error: {load.first_error}")
        print(f"{'':<14} {writers:>7} server/sqlite seconds: {server.seconds / sqlite.seconds:.2f}")


if __name__ == "__main__":
    main()
