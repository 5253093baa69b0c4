"""One night: run every entry of the suite into MLflow, compare with the nights before, report.

    python jobs/nightly.py --config configs/nightly/suite.yaml [--set path=value ...] [--date YYYY-MM-DD]

Exit status: 0 passed; 1 a metric regressed or went missing, or an entry failed; 2 an invalid suite.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import traceback
from typing import TextIO

import yaml
from mlflow.tracking import MlflowClient

from geosweep.config import ConfigError, flatten
from geosweep.nightly import store
from geosweep.nightly.compare import compare_entry, night_status
from geosweep.nightly.figures import measure
from geosweep.nightly.report import Night, html_page, markdown
from geosweep.nightly.suite import PlannedFigure, PlannedRun, SuiteConfig, load_suite, plan
from geosweep.ray_local import ensure_ray
from geosweep.tracking.mlflow_run import experiment_id, resolve_tracking_uri, terminate_run
from geosweep.train.launch import check_run, run_training


def run_nightly(suite: SuiteConfig, date: str, out: TextIO = sys.stdout) -> int:
    """Run the suite as the night of `date`, compare, write the report to MLflow and `out`.

    A failing entry is reported and the others still run; every run already
    recorded stays in MLflow whatever happens later.

    Returns:
        The exit status: 0 passed, 1 regressed (a metric, or a failed entry).

    Raises:
        ConfigError: an entry cannot run on this cluster (it does not fit, or storage or tracking would not last).
    """
    entries = plan(suite)
    ensure_ray()
    for entry in entries:  # before the night's parent run: a night that cannot run leaves no trace
        if isinstance(entry, PlannedRun):
            what = f"nightly entry {entry.name!r}"
            check_run(
                entry.config, suite.storage_path, what=what, storage_field="storage_path", tracking_field="tracking_uri"
            )
    client = MlflowClient(resolve_tracking_uri(suite.tracking_uri))
    experiment = experiment_id(client, suite.experiment)  # created here, before any worker opens the store
    parent = store.start_night(client, experiment, suite.name, date, yaml.safe_dump(suite.model_dump(mode="json")))
    try:
        results: dict[str, dict[str, float]] = {}
        failures: dict[str, str] = {}
        tracebacks: dict[str, str] = {}  # stored with the report: an entry that failed for MLflow's sake fails here
        for entry in entries:
            try:
                run_entry(client, experiment, suite, entry, store.child_tags(parent, suite.name, date, entry.name))
                results[entry.name] = store.entry_metrics(client, experiment, parent, entry.name)
            except Exception as err:  # noqa: BLE001  (any failure of one entry is reported, and the night goes on)
                traceback.print_exc()
                failures[entry.name] = error_summary(err)
                tracebacks[f"errors/{entry.name}.txt"] = traceback.format_exc()

        history = store.past_nights(client, experiment, suite.name, date, set(results), suite.baseline_window)
        comparisons = []
        for entry in entries:
            if entry.name in results:  # a failed entry is reported as failed, not metric by metric
                comparisons += compare_entry(
                    entry.name,
                    entry.metrics,
                    results[entry.name],
                    history[entry.name],
                    suite.tolerances,
                    suite.baseline_window,
                )
        status = night_status(comparisons, failures)
        tags = client.get_run(parent).data.tags
        night = Night(suite.name, date, status, suite.baseline_window, comparisons, failures, tags)
        report = markdown(night)
        print(report, file=out)  # first: the report is read even where MLflow cannot store it
        reports = {"nightly_report.md": report, "nightly_report.html": html_page(night), **tracebacks}
        store.finish_night(client, parent, night.status, reports)
    except BaseException as error:
        try:
            terminate_run(client, parent, "FAILED")  # no status tag: this night is no one's baseline
        except Exception as tracking_error:  # noqa: BLE001  (the night's own error is the one to raise)
            error.add_note(f"(and the night's MLflow run {parent} could not be marked FAILED: {tracking_error})")
        raise
    return 0 if night.status == "passed" else 1


def run_entry(
    client: MlflowClient, experiment: str, suite: SuiteConfig, entry: PlannedRun | PlannedFigure, tags: dict[str, str]
) -> None:
    """Run one entry into its child run (marked FAILED if it raises; the traceback goes on the parent run)."""
    if isinstance(entry, PlannedRun):
        # The parent's id in the name: a rerun of a date never resumes an earlier night's Train run.
        name = f"{entry.name}-{tags[store.DATE]}-{tags['mlflow.parentRunId'][:8]}"
        run_training(entry.config, storage_path=suite.storage_path, run_name=name, tags=tags)
        return
    run_id = store.start_child(client, experiment, tags, flatten(entry.spec))
    try:
        store.log_metrics(client, run_id, measure(entry.spec, suite.storage_path, client.tracking_uri))
    except BaseException:
        terminate_run(client, run_id, "FAILED")
        raise
    terminate_run(client, run_id, "FINISHED")


def error_summary(err: BaseException, limit: int = 400) -> str:
    """The error's type and its last line (a worker's own exception, for Ray Train's wrapped failures)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[-1] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def night_date(text: str) -> str:
    """`--date`'s type: an ISO date, as YYYY-MM-DD."""
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """The nightly job's command line; returns its exit status."""
    parser = argparse.ArgumentParser(prog="nightly", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="nightly suite YAML, e.g. configs/nightly/suite.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a suite field, e.g. --set baseline_window=7 or --set run_overrides.epochs=2 (repeatable)",
    )
    parser.add_argument(
        "--date",
        type=night_date,
        default=datetime.datetime.now(datetime.UTC).date().isoformat(),
        help="the night's date, YYYY-MM-DD (default: today in UTC, as the schedule's submission id)",
    )
    args = parser.parse_args(argv)
    try:
        return run_nightly(load_suite(args.config, args.overrides), args.date)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
