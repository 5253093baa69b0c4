"""The training loop every rank runs: in a Ray Train worker (DDP: gloo on CPU, nccl on GPU) or a Tune trial.

The loop owns what every run shares (resume, checkpoints, reports, MLflow); where it runs
(train/session.py) decides where reports and checkpoints go. train/training.py runs the
epochs, and the task (tasks/) its data, loss and metrics.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from geosweep.config import RunConfig, TrackingSpec
from geosweep.environ import scoped_environ, unless_set
from geosweep.model import Model
from geosweep.tasks.base import Task
from geosweep.tracking import EpochLogger
from geosweep.tracking.datasets import run_datasets
from geosweep.tracking.system_metrics import system_metrics
from geosweep.train.checkpoint import checkpoint_dir, load_state
from geosweep.train.live_metrics import LiveMetrics
from geosweep.train.session import Session
from geosweep.train.training import Training

# One try per MLflow request while rank 0 trains: its outbox retries, within `tracking.outage_limit_s`. MLflow's
# own retries would hold one write (or the system monitor's status read) for minutes, 7 tries with back-off,
# and delay recovery by as much. A value the user set wins.
FAIL_FAST_MLFLOW = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def train(loop_config: dict[str, Any], session: Session) -> None:
    """Train one config on this rank, rank 0 under MLflow's system monitor (see `train_rank` for the arguments).

    While it trains, MLflow tries each request once (FAIL_FAST_MLFLOW). Only for that while: in a Tune
    trial's own process, the trial's driver code around it keeps MLflow's retries.
    """
    with scoped_environ(unless_set(FAIL_FAST_MLFLOW)), rank_zero_system_metrics(loop_config, session.rank):
        train_rank(loop_config, session)


def train_rank(loop_config: dict[str, Any], session: Session) -> None:
    """Train one config on this rank; rank 0 checkpoints and logs to MLflow.

    Args:
        loop_config: {"config": RunConfig as a dict, "tracking_uri": str, "run_id": str, "run_name": str,
            "echo": print one line per epoch (rank 0), "ray_logs": keep Ray Train's INFO lines on the console,
            and optionally "inject_failure": {"rank", "epoch", "marker"} for fault-tolerance tests}.
        session: where this rank runs (train/session.py).
    """
    config = RunConfig.model_validate(loop_config["config"])  # validated again where it runs
    rank, world_size, device = session.rank, session.world_size, session.device
    if not loop_config.get("ray_logs"):
        quiet_ray_train_console()
    echo = loop_config.get("echo") and rank == 0

    # --- build: identical initial weights on every rank, then per-rank random streams
    training = Training(config, rank, world_size, device)
    task, model = training.task, training.model

    # --- resume from the last checkpoint (after a worker failure)
    logger = rank_zero_logger(loop_config, config) if rank == 0 else None
    if logger:
        logger.set_tag("device", str(device))
        logger.set_tag("train.session", session.name)  # a Ray Train worker, or a Tune trial's own process
        logger.set_tag("process", f"{socket.gethostname()}:{os.getpid()}")  # Ray names its log files by the pid
        logger.set_tag("ddp.backend", dist.get_backend() if dist.is_initialized() else "none")
        logger.set_tag("torch.num_threads", str(torch.get_num_threads()))  # what Ray's CPU share gave this worker
        logger.log_datasets_once(run_datasets(config, task.data))
    start_epoch, start_metrics, history = 1, {}, {}
    checkpoint = session.latest_checkpoint()
    if checkpoint is None:
        start_metrics = task.start_metrics()
    else:
        state = load_state(checkpoint)
        training.load_state_dict(state)
        start_epoch = state["epoch"] + 1
        start_metrics, history = state["start_metrics"], state["history"]
        if logger:
            logger.set_tag("resumed_from_epoch", str(state["epoch"]))
    if logger:
        # An earlier attempt may have died with these still queued (an MLflow outage): each lands once.
        logger.log_step_once(0, start_metrics)
        for logged_epoch, logged in history.items():
            logger.log_epoch_once(logged_epoch, logged)
    training.distribute(session.prepare_model)
    live = LiveMetrics(config.tracking.experiment, loop_config["run_name"], rank)  # Prometheus, via Ray's agent

    for epoch in range(start_epoch, config.epochs + 1):
        maybe_inject_failure(loop_config.get("inject_failure"), rank, epoch)
        metrics = training.train_epoch(epoch, on_step=live.step)
        live.epoch(epoch)
        if not math.isfinite(metrics["train_loss"]):  # every rank sees the same reduced loss: all stop together
            raise FloatingPointError(
                f"training diverged: non-finite mean loss ({metrics['train_loss']}) in epoch {epoch}"
            )
        metrics |= task.evaluate()
        history[epoch] = metrics

        # --- report (a collective: every rank calls it; rank 0 attaches the checkpoint)
        state = None
        if rank == 0:
            state = {
                **training.state_dict(),
                "epoch": epoch,
                "start_metrics": start_metrics,
                "history": history,
                "config": config.model_dump(mode="json"),
            }
        if logger:
            # In the store before Tune sees the epoch: a trial its scheduler stops here keeps the epoch it
            # was judged on (the stop kills this process). An epoch re-run after a failure is not logged twice.
            logger.log_epoch_once(epoch, metrics)
            if epoch == config.epochs:  # the last report may end this process too (ASHA stops trials at max_t)
                log_final(logger, task, model, config)
            logger.settle()
        with checkpoint_dir(state, session.checkpoint_type) as checkpoint:
            session.report({**metrics, "epoch": epoch}, checkpoint)
        if echo:
            console(epoch_line(epoch, config.epochs, metrics))

    if logger:
        if start_epoch > config.epochs:  # resumed from the last epoch's checkpoint: its final writes may be missing
            log_final(logger, task, model, config)
        logger.close()  # everything delivered, or a clear error once the outage limit has passed


def log_final(logger: EpochLogger, task: Task, model: Model, config: RunConfig) -> None:
    """Rank 0 after the last epoch: the task's final metrics and the final model, in the store when it returns.

    The model is an MLflow model (tracking/logged_model.py), its signature from two real test instances. Waits
    for the store while it answers (not through an outage): whatever follows may end this process.
    """
    logger.log_step_once(config.epochs, task.final_metrics())
    logger.log_model_once(model, task.example_inputs(2), config, step=config.epochs)
    logger.settle(timeout_s=config.tracking.outage_limit_s)


def rank_zero_logger(loop_config: dict[str, Any], config: RunConfig) -> EpochLogger:
    """The run's MLflow writer, failing fast per request: its outbox retries, within `outage_limit_s`."""
    return EpochLogger(
        loop_config["tracking_uri"], loop_config["run_id"], outage_limit_s=config.tracking.outage_limit_s
    )


def rank_zero_system_metrics(loop_config: dict[str, Any], rank: int) -> AbstractContextManager:
    """On rank 0, MLflow's system-metrics monitor of its node while the block runs, failed or not; elsewhere nothing."""
    if rank != 0:
        return nullcontext()
    tracking = TrackingSpec.model_validate(loop_config["config"]["tracking"])
    return system_metrics(tracking, loop_config["tracking_uri"], loop_config["run_id"])


def epoch_line(epoch: int, epochs: int, metrics: dict[str, float]) -> str:
    """One console line per epoch: the losses, the validation metrics and the epoch's seconds."""
    shown = {k: v for k, v in metrics.items() if k in ("train_loss", "epoch_seconds") or k.startswith("val_")}
    return f"epoch {epoch}/{epochs}: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items())


def quiet_ray_train_console() -> None:
    """Keep Ray Train's INFO lines (one per report and per checkpoint) off this process's console.

    In a Train worker, RunConfig's LoggingConfig filters Ray Train's loggers by name, but the per-report
    line comes from a logger named by its file's path; the run's log files keep every line. In a Tune
    trial's own process, Ray's handler would print each checkpoint's line. Warnings and errors still
    reach the console.
    """
    console_handlers = [handler for handler in logging.getLogger().handlers if handler.get_name() == "console"]
    for handler in console_handlers + logging.getLogger("ray").handlers:
        if not_ray_train_info not in handler.filters:  # once, in a process that trains again
            handler.addFilter(not_ray_train_info)


def not_ray_train_info(record: logging.LogRecord) -> bool:
    """A record that is not one of Ray Train's INFO lines."""
    return record.levelno >= logging.WARNING or "/ray/train/" not in record.pathname


def console(line: str) -> None:
    """One line on this worker's stdout, which Ray forwards to the driver's console.

    Not print(): in a Train worker it also logs the line to the root logger, whose console handler
    writes it a second time.
    """
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def maybe_inject_failure(spec: dict[str, Any] | None, rank: int, epoch: int) -> None:
    """Kill this worker process once, at the given rank and epoch (fault-tolerance tests).

    It dies `delay_s` into the epoch, as a real crash mid-epoch would: Ray Train's
    controller registers a reported checkpoint on its next health check, so a
    death right after a report may fall back to the checkpoint before it.
    """
    if spec and rank == spec["rank"] and epoch == spec["epoch"] and not Path(spec["marker"]).exists():
        Path(spec["marker"]).touch()
        time.sleep(spec.get("delay_s", 0.0))
        os._exit(1)
