"""The sweep's live console view: one plain line per update, readable in a terminal and in `ray job logs`.

    [sweep qs 0:02:31] 6 trials: 1 pending, 2 running, 2 finished, 1 stopped early, 0 failed | best val_acc 0.8 (seed=0)

A line is printed when something changed, at most once per interval, and
unchanged state again after ten intervals, so a 2-core laptop and a job log get
a few dozen lines, not a redrawn table. No ANSI cursor movement: the lines
read the same in a file.

It is a Tune ProgressReporter (tune.RunConfig(progress_reporter=...)). Ray
2.60's default output engine ignores custom reporters ("AIR_VERBOSITY is set,
ignoring passed-in ProgressReporter") and, even at verbose=0, prints its own
header box and a final trial table; a Tune Callback would run beside that
output, not replace it. So while the sweep runs, its driver selects the legacy engine
(RAY_AIR_NEW_OUTPUT=0, see `progress_view`), which honours the reporter
and prints nothing else at verbose=1.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ray.tune import ProgressReporter
from ray.tune.experiment import Trial

from geosweep.environ import scoped_environ

HEARTBEAT_INTERVALS = 10  # unchanged state is printed again after this many intervals


@dataclass(frozen=True)
class Progress:
    """Where a sweep stands: trial counts by state and the best trial so far."""

    pending: int
    running: int
    finished: int
    stopped: int  # stopped early by the scheduler
    failed: int
    best: tuple[str, float, str] | None = None  # (metric, best value reported so far, configuration label)

    @property
    def total(self) -> int:
        """All trials, whatever their state."""
        return self.pending + self.running + self.finished + self.stopped + self.failed


def config_label(config: dict[str, Any]) -> str:
    """A trial's sampled values as `path=value, ...` (sorted; floats to 4 significant digits)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items()))


def summarize(trials: list[Trial], total: int, max_epochs: int, metric: str, mode: str) -> Progress:
    """Count Tune's trials by state and find the best `metric` any of them has reported so far.

    Args:
        trials: the trials Tune has created so far.
        total: how many the sweep will have (those not yet created count as pending).
        max_epochs: a trial that ended with fewer epochs was stopped early.
        metric: the metric trials are ranked by.
        mode: "max" or "min". Failed trials are never the best.
    """
    counts = {"pending": max(0, total - len(trials)), "running": 0, "finished": 0, "stopped": 0, "failed": 0}
    best = None
    for trial in trials:
        if trial.status == Trial.ERROR:
            counts["failed"] += 1
            continue
        if trial.status == Trial.TERMINATED:
            counts["finished" if trial.last_result.get("epoch", 0) >= max_epochs else "stopped"] += 1
        elif trial.status == Trial.RUNNING:
            counts["running"] += 1
        else:  # PENDING, or PAUSED by a scheduler
            counts["pending"] += 1
        value = trial.metric_analysis.get(metric, {}).get(mode)  # this trial's best epoch: "best so far" never drops
        if isinstance(value, (int, float)) and (
            best is None or (value > best[1] if mode == "max" else value < best[1])
        ):
            best = (metric, float(value), config_label(trial.config))
    return Progress(**counts, best=best)


def format_line(sweep_name: str, elapsed_s: float, progress: Progress) -> str:
    """One line of the view (see the module docstring)."""
    elapsed = timedelta(seconds=round(elapsed_s))
    line = (
        f"[sweep {sweep_name} {elapsed}] {progress.total} trials: {progress.pending} pending, "
        f"{progress.running} running, {progress.finished} finished, {progress.stopped} stopped early, "
        f"{progress.failed} failed"
    )
    if progress.best is None:
        return line + " | no result yet"
    metric, value, label = progress.best
    return line + f" | best {metric} {value:.4g} ({label})"


class SweepProgress(ProgressReporter):
    """Prints the view while Tune runs the sweep; one last line when it ends."""

    def __init__(self, sweep_name: str, max_epochs: int, interval_s: float) -> None:
        self.sweep_name, self.max_epochs, self.interval_s = sweep_name, max_epochs, interval_s
        self.metric, self.mode, self.total = "", "max", 0
        self.started = self.printed_at = 0.0
        self.last_printed: Progress | None = None

    def setup(self, start_time=None, total_samples=None, metric=None, mode=None, **kwargs) -> None:
        """Called by Tune once the sweep's size and metric are known."""
        self.started = start_time or time.time()
        self.total, self.metric, self.mode = total_samples or 0, metric or "", mode or "max"

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """Print when counts or the best changed, at most once per interval, and always at the end."""
        since = time.time() - self.printed_at
        if done or self.last_printed is None:
            return True
        if since < self.interval_s:
            return False
        return self.progress(trials) != self.last_printed or since >= HEARTBEAT_INTERVALS * self.interval_s

    def report(self, trials: list[Trial], done: bool, *sys_info: str) -> None:
        """Print one progress line."""
        self.printed_at, self.last_printed = time.time(), self.progress(trials)
        print(format_line(self.sweep_name, self.printed_at - self.started, self.last_printed), flush=True)

    def progress(self, trials: list[Trial]) -> Progress:
        """The counts and best result of these trials now."""
        return summarize(trials, self.total, self.max_epochs, self.metric, self.mode)


@contextlib.contextmanager
def progress_view(sweep_name: str, max_epochs: int, interval_s: float) -> Iterator[dict[str, Any]]:
    """Within the block, Tune shows the view in place of its own output; yields the tune.RunConfig arguments.

    Tune reads RAY_AIR_NEW_OUTPUT when a Tuner is built or restored and again in `fit`, and only the legacy
    engine that "0" selects honours a custom reporter: build the Tuner and fit it inside the block. The
    variable is restored when the block ends.

    Args:
        sweep_name: shown at the start of every line.
        max_epochs: a trial that ended with fewer epochs was stopped early.
        interval_s: at most one line per interval, unless the sweep ended.
    """
    with scoped_environ({"RAY_AIR_NEW_OUTPUT": "0"}):
        yield {"progress_reporter": SweepProgress(sweep_name, max_epochs, interval_s), "verbose": 1}
