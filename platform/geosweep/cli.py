"""`geosweep` command line: thin wrappers over the package.

    geosweep validate CONFIG [--set a.b=value ...]
    geosweep train CONFIG [--set a.b=value ...] [--storage-path PATH]
"""

from __future__ import annotations

import argparse
import sys

from geosweep.config import ConfigError, RunConfig, dump_yaml, load_run_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geosweep", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a config without starting Ray")
    add_config_arguments(validate)
    validate.add_argument("--print", action="store_true", help="print the resolved config")

    train = commands.add_parser("train", help="run one training run on Ray Train, tracked in MLflow")
    add_config_arguments(train)
    train.add_argument("--storage-path", help="where Ray Train keeps checkpoints (default ~/ray_results)")

    args = parser.parse_args(argv)
    try:
        config = load_run_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.command == "validate":
        print(dump_yaml(config) if args.print else f"{args.config}: ok")
        return 0
    return train_command(config, args.storage_path)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML run config, e.g. configs/train/shapes_pointnet_tinv.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set backbone.name=pointnet --set epochs=3 (repeatable)",
    )


def train_command(config: RunConfig, storage_path: str | None) -> int:
    import ray.train

    from geosweep.train.launch import run_training  # imports Ray and torch: keep `validate` fast

    try:
        result = run_training(config, storage_path=storage_path)
    except ray.train.TrainingFailedError as err:
        print(f"error: training failed: {err}", file=sys.stderr)
        return 1
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    print("final metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
