"""`geosweep` command line: thin wrappers over the package.

geosweep validate CONFIG|SWEEP [--set a.b=value ...]
geosweep train CONFIG [--set a.b=value ...] [--storage-path PATH]
geosweep sweep SWEEP [--set a.b=value ...] [--resume [--allow-changes] [--retry-failed]]
geosweep report EXPERIMENT_OR_SWEEP [-o report.html] [--metric val_acc] [--mlflow-url URL]
geosweep evaluate MODEL_URI [--dataset FILE] [--set a.b=value ...] [--log-to RUN_ID]
geosweep list [AXIS]
geosweep --version
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

import geosweep
from geosweep.config import ConfigError, RunConfig, dump_yaml, load_run_config, load_yaml
from geosweep.registry import AXES


def main(argv: list[str] | None = None) -> int:
    """Run one `geosweep` command; returns its exit status."""
    parser = argparse.ArgumentParser(prog="geosweep", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"geosweep {geosweep.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, summary: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=summary, epilog=f"example:\n  {example}", formatter_class=KeepLayout
        )

    validate = command(
        "validate", "check a run or sweep config without starting Ray", "geosweep validate configs/sweeps/tsp.yaml"
    )
    add_config_arguments(validate, "run or sweep config", "configs/train/shapes_pointnet_tinv.yaml")
    validate.add_argument("--print", action="store_true", help="print the resolved run config")

    train = command(
        "train",
        "run one training run on Ray Train, tracked in MLflow",
        "geosweep train configs/train/shapes_pointnet_tinv.yaml --set epochs=3",
    )
    add_config_arguments(train, "run config", "configs/train/shapes_pointnet_tinv.yaml")
    train.add_argument(
        "--storage-path", help="where Ray Train keeps checkpoints (default ./ray_results on a local Ray)"
    )
    train.add_argument("--ray-logs", action="store_true", help="show Ray Train's own INFO lines on the console too")

    sweep = command(
        "sweep",
        "run a sweep on Ray Tune; exit status 0 only if every trial succeeded",
        "geosweep sweep configs/sweeps/quickstart.yaml --set base.epochs=2",
    )
    add_config_arguments(
        sweep,
        "sweep config (a base run config and the space to search)",
        "configs/sweeps/tsp.yaml",
        "--set base.epochs=3 --set searcher.num_samples=2",
    )
    sweep.add_argument(
        "--resume", action="store_true", help="finish the latest run of this sweep (its driver died); else a new run"
    )
    sweep.add_argument(
        "--allow-changes", action="store_true", help="with --resume: accept a config that differs from the saved one"
    )
    sweep.add_argument("--retry-failed", action="store_true", help="with --resume: run the failed trials again too")
    sweep.add_argument("--ray-logs", action="store_true", help="show Ray Train's own INFO lines on the console too")

    report = command(
        "report",
        "write one self-contained HTML page comparing an experiment's or sweep's runs",
        "geosweep report quickstart -o quickstart.html",
    )
    report.add_argument("name", metavar="EXPERIMENT_OR_SWEEP", help="an MLflow experiment name, else a sweep name")
    report.add_argument("-o", "--output", default="report.html", help="where to write the page (default report.html)")
    report.add_argument(
        "--metric", help="metric to rank by and plot per epoch, e.g. val_gap (default: the sweep's; val_acc)"
    )
    report.add_argument(
        "--mode", choices=["max", "min"], help="which end of --metric is best (default: the sweep's, else max)"
    )
    report.add_argument("--tracking-uri", help="MLflow store (default $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    report.add_argument(
        "--mlflow-url",
        help="MLflow UI to link each run into, e.g. http://127.0.0.1:5000 for `mlflow ui` on a SQLite store "
        "(default: the tracking URI when it is a server's; else no links)",
    )

    evaluate = command(
        "evaluate",
        "score a logged model with its task's own evaluation and print the metrics a trial logs",
        "geosweep evaluate models:/geosweep-quickstart@best --set dataset.rotation.test=so3",
    )
    evaluate.add_argument(
        "model",
        metavar="MODEL_URI",
        help="a run id (its model), runs:/RUN_ID/model, models:/NAME@ALIAS, models:/NAME/VERSION, models:/MODEL_ID "
        "or a local model directory",
    )
    evaluate.add_argument(
        "--dataset",
        metavar="FILE",
        help="YAML dataset spec (a run config's dataset: mapping, or a whole run config) to score on instead of the "
        "model's own, e.g. configs/train/shapes_pointnet_tinv.yaml",
    )
    evaluate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field of the model's config, e.g. dataset.rotation.test=so3 (repeatable)",
    )
    evaluate.add_argument("--log-to", metavar="RUN_ID", help="also log the metrics into this MLflow run (at step 0)")
    evaluate.add_argument("--device", help="where to score, e.g. cpu or cuda:0 (default: cuda where there is one)")
    evaluate.add_argument("--tracking-uri", help="MLflow store (default $MLFLOW_TRACKING_URI, else ./mlflow.db)")

    listing = command(
        "list", "the registered components of each sweep axis, with their arguments", "geosweep list backbone"
    )
    listing.add_argument("axis", nargs="?", choices=list(AXES), help="one axis (default: all)")

    args = parser.parse_args(argv)
    if args.command == "list":
        print(components(args.axis))
        return 0
    if getattr(args, "ray_logs", False):
        from geosweep.ray_local import RAY_LOGS_ENV

        os.environ[RAY_LOGS_ENV] = "1"  # before Ray starts: a local instance's processes inherit it
    if args.command == "report":
        return report_command(args)
    if args.command == "evaluate":
        return evaluate_command(args)
    try:
        if args.command == "sweep" or (args.command == "validate" and is_sweep(args.config)):
            return sweep_command(args)
        config = load_run_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.command == "validate":
        print(dump_yaml(config) if args.print else f"{args.config}: ok")
        return 0
    return train_command(config, args.storage_path)


def is_sweep(path: str) -> bool:
    """A sweep config has a `base` run config; a run config never does."""
    try:
        raw = load_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # the run-config loader reports the problem
    return isinstance(raw, dict) and "base" in raw


def sweep_command(args: argparse.Namespace) -> int:
    """Validate a sweep config, then (for `geosweep sweep`) run it and print its leaderboard."""
    from geosweep.sweep.config import count_trial_configurations, load_sweep_config, validate_every_trial

    sweep = load_sweep_config(args.config, args.overrides)
    checked, total = validate_every_trial(sweep), count_trial_configurations(sweep)
    if args.command == "validate":
        unchecked = f"; the other {total - checked} were not checked" if checked < total else ""
        print(f"{args.config}: ok ({checked} of {total} trial configurations checked{unchecked})")
        return 0
    from geosweep.sweep.run import run_sweep  # imports Ray Tune: keep `validate` fast

    results, leaderboard = run_sweep(
        sweep, resume=args.resume, allow_changes=args.allow_changes, retry_failed=args.retry_failed
    )
    print(leaderboard)
    for failure in results.errors:
        print(f"error: trial failed: {str(failure).splitlines()[0]}", file=sys.stderr)
    print(f"{len(results)} trials, {len(results.errors)} failed; leaderboard and best config on the MLflow parent run")
    return 1 if results.errors else 0


def report_command(args: argparse.Namespace) -> int:
    """Write the HTML report of a sweep or the nightly from MLflow."""
    from geosweep.report.collect import ReportError
    from geosweep.report.page import write_report
    from geosweep.tracking.mlflow_run import resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(args.tracking_uri)
        data = write_report(uri, args.name, Path(args.output), args.metric, args.mode, args.mlflow_url)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.output}: report of {data.title} ({len(data.rows)} runs, {data.metric})")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """Score a logged model with its task's evaluation; print the metrics (and log them with --log-to)."""
    from geosweep.tracking.logged_model import ModelError
    from geosweep.tracking.mlflow_run import resolve_tracking_uri
    from geosweep.train.evaluate import evaluate  # imports torch and MLflow's model flavors: keep `validate` fast

    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        evaluation = evaluate(
            args.model, uri, dataset_file=args.dataset, overrides=args.overrides, device=args.device, log_to=args.log_to
        )
    except (ConfigError, ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(evaluation.report())
    if args.log_to:
        print(f"logged into MLflow run {args.log_to}")
    return 0


class KeepLayout(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the example's own line breaks."""


def components(axis: str | None) -> str:
    """Each registered component of `axis` (default: every axis): its name, summary and arguments with defaults."""
    lines = []
    for name, registry in AXES.items():
        if axis not in (None, name):
            continue
        lines.append(f"{name}:")
        for entry in registry.names():
            kind = f" [{registry.kind(entry)}]" if registry.kinds else ""
            lines.append(f"  {entry}{kind}: {registry.summary(entry)}")
            lines += [f"      {argument}" for argument in registry.arguments(entry)]
    return "\n".join(lines)


def add_config_arguments(
    parser: argparse.ArgumentParser, what: str, example: str, overrides: str = "--set backbone.name=pointnet"
) -> None:
    """Add the config path (`what`, e.g. `example`) and its repeatable `--set PATH=VALUE` overrides."""
    parser.add_argument("config", help=f"YAML {what}, e.g. {example}")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=f"override a field, e.g. {overrides} (repeatable)",
    )


def train_command(config: RunConfig, storage_path: str | None) -> int:
    """Train one config on Ray (local, or the cluster in RAY_ADDRESS) after the cluster checks."""
    import ray.train

    from geosweep.ray_local import ensure_ray
    from geosweep.train.launch import check_run, run_training  # imports Ray and torch: keep `validate` fast

    ensure_ray()
    try:
        check_run(config, storage_path, what="geosweep train", storage_field="--storage-path")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = run_training(config, storage_path=storage_path, echo=True)
    except ray.train.TrainingFailedError as err:
        print(f"error: training failed: {err}", file=sys.stderr)
        return 1
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    print("final metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
