"""The sweep's console view: counts and best trial from Tune's own Trial objects, plain lines, throttled."""

import os
import time

from ray.tune.experiment import Trial
from ray.tune.experimental.output import get_air_verbosity

from geosweep.sweep.progress import Progress, SweepProgress, format_line, progress_view, summarize


def trial(status: str, config: dict, *val_accs: float) -> Trial:
    """A real Tune Trial (stub: no registered trainable needed) that reported `val_accs`, one per epoch."""
    made = Trial("run_trial", config=config, stub=True)
    for epoch, val_acc in enumerate(val_accs, start=1):
        made.update_last_result({"val_acc": val_acc, "epoch": epoch})
    made.set_status(status)
    return made


def test_trials_are_counted_by_state_and_the_best_is_never_a_failed_one():
    trials = [
        trial(Trial.TERMINATED, {"optimizer.lr": 0.001}, 0.5, 0.6, 0.7, 0.8),
        trial(Trial.TERMINATED, {"optimizer.lr": 3e-05}, 0.3),  # stopped by the scheduler
        trial(Trial.RUNNING, {"optimizer.lr": 0.01, "hypernet": "{name: none}"}, 0.85, 0.75),  # its best epoch counts
        trial(Trial.ERROR, {"optimizer.lr": 1.0}, 0.9),
        trial(Trial.PENDING, {"optimizer.lr": 0.1}),
    ]
    progress = summarize(trials, total=7, max_epochs=4, metric="val_acc", mode="max")
    assert progress == Progress(
        pending=3,
        running=1,
        finished=1,
        stopped=1,
        failed=1,
        best=("val_acc", 0.85, "hypernet={name: none}, optimizer.lr=0.01"),
    )
    lowest = summarize(trials, total=7, max_epochs=4, metric="val_acc", mode="min")
    assert lowest.best == ("val_acc", 0.3, "optimizer.lr=3e-05")


def test_a_line_is_plain_text_with_counts_best_and_elapsed_time():
    progress = Progress(pending=1, running=2, finished=2, stopped=1, failed=0, best=("val_acc", 0.8125, "seed=0"))
    assert format_line("quickstart", 151.4, progress) == (
        "[sweep quickstart 0:02:31] 6 trials: 1 pending, 2 running, 2 finished, 1 stopped early, 0 failed"
        " | best val_acc 0.8125 (seed=0)"
    )
    expected = "4 trials: 4 pending, 0 running, 0 finished, 0 stopped early, 0 failed | no result yet"
    assert format_line("q", 0, Progress(4, 0, 0, 0, 0)).endswith(expected)


def test_the_view_prints_changes_at_most_once_per_interval_and_always_at_the_end(capsys):
    view = SweepProgress("s", max_epochs=2, interval_s=0.3)
    view.setup(start_time=time.time(), total_samples=2, metric="val_acc", mode="max")
    waiting = [trial(Trial.PENDING, {"seed": 0}), trial(Trial.PENDING, {"seed": 1})]
    running = [trial(Trial.RUNNING, {"seed": 0}, 0.5), waiting[1]]

    def tune_step(trials, done=False):  # what Tune does after each step of its loop
        if view.should_report(trials, done=done):
            view.report(trials, done)

    tune_step(waiting)  # the first step prints
    tune_step(running)  # changed, but within the interval
    time.sleep(0.35)
    tune_step(running)  # changed since the last line: printed
    time.sleep(0.35)
    tune_step(running)  # unchanged: not again before the heartbeat
    tune_step(running, done=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "\x1b" not in "".join(lines)
    assert "2 pending, 0 running" in lines[0] and "no result yet" in lines[0]
    assert "1 pending, 1 running" in lines[1] and "best val_acc 0.5 (seed=0)" in lines[1]
    assert lines[2].split("]")[1] == lines[1].split("]")[1]


def test_the_legacy_output_engine_is_selected_only_within_the_view(monkeypatch):
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    with progress_view("s", max_epochs=2, interval_s=1.0) as output:
        assert get_air_verbosity(1) is None  # Tune's own test: the legacy engine, the one that honours a reporter
        assert isinstance(output["progress_reporter"], SweepProgress) and output["verbose"] == 1
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert get_air_verbosity(1) is not None
