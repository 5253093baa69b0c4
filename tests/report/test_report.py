"""`geosweep report` on a real MLflow store: what the page holds, and clear errors for bad input."""

import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from geosweep.cli import main
from geosweep.comparison.rows import Row
from geosweep.report.collect import Nightly, ReportData, collect
from geosweep.report.page import render
from report.sweep_store import fresh_store


def report(tmp_path: Path, uri: str, *args: str) -> str:
    assert main(["report", *args, "-o", str(tmp_path / "report.html"), "--tracking-uri", uri]) == 0
    return (tmp_path / "report.html").read_text()


def test_sweep_report_holds_every_section(report_store, tmp_path, capsys):
    page = report(tmp_path, report_store["uri"], "ui-sweep")
    assert "report.html: report of sweep ui-sweep (8 runs, val_acc)" in capsys.readouterr().out
    assert "8 runs (1 failed, 7 finished)" in page
    for div in ("parallel-coordinates", "pareto", "learning-curves", "nightly"):
        assert f'id="{div}"' in page, div
    # The leaderboard: 4 configurations (representation x training rotation), 2 seeds each, best first.
    board = page[page.index('<table class="leaderboard">') : page.index("</table>")]
    configurations = re.findall(r"<tr><td>(dataset\.rotation\.train=[^<]+)</td><td>(\d)</td><td>([^<]+)</td>", board)
    assert len(configurations) == 4 and all(seeds == "2" for _, seeds, _ in configurations)
    assert configurations[0][0] == "dataset.rotation.train=z, representation.name=raw"
    assert "1 failed" in board
    # The robustness table: z/z, z/SO3 and SO3/SO3 per representation x backbone.
    robustness = page[page.index('<table class="robustness">') :]
    header = re.findall(r"<th>([^<]+)</th>", robustness[: robustness.index("</thead>")])
    assert {"z/z", "z/so3", "so3/so3"} <= set(header)
    raw = re.search(r"<tr><td>raw</td><td>pointnet</td><td>none</td>(.*?)</tr>", robustness).group(1)
    cells = dict(zip(header[3:], re.findall(r"<td>([^<]+)</td>", raw), strict=True))
    # Sample SD and the 95 % interval over the 2 seeds; one seed alone (the other failed) has no spread.
    assert cells["z/so3"] == "0.255 +- 0.007 [0.191, 0.319] (2)" and cells["so3/so3"] == "0.800 (1)"


def test_nightly_trends_hold_the_tracked_metrics_per_entry_and_date(report_store):
    series = collect(report_store["uri"], "ui-sweep").nightly.series
    assert set(series) == {"val_acc", "samples_per_sec"}  # the suite's tolerances; train_loss is not tracked
    assert series["val_acc"]["pointnet-raw"] == [("2026-01-01", 0.75), ("2026-01-02", 0.76), ("2026-01-03", 0.77)]


def test_experiment_report_leaves_the_sweep_parent_out_and_metric_is_configurable(report_store, tmp_path):
    data = collect(report_store["uri"], "report-tests", metric="val_gap", mode="min")
    assert len(data.rows) == 8 and not data.curves  # parent left out; no run logged val_gap
    page = report(tmp_path, report_store["uri"], "report-tests", "--metric", "val_gap", "--mode", "min")
    assert "No run logged val_gap per epoch." in page and "No run logged test_gap/&lt;protocol&gt; metrics." in page
    assert collect(report_store["uri"], "ui-sweep").mode == "max"  # the sweep's own metric and mode by default


def test_unknown_names_and_missing_stores_are_clear_errors(report_store, tmp_path, capsys):
    args = ["-o", str(tmp_path / "r.html"), "--tracking-uri"]
    assert main(["report", "no-such-sweep", *args, report_store["uri"]]) == 2
    error = capsys.readouterr().err
    assert "no experiment or sweep named 'no-such-sweep'" in error
    assert "experiments: Default, nightly, report-tests; sweeps: ui-sweep" in error
    missing = tmp_path / "nowhere" / "mlflow.db"
    assert main(["report", "ui-sweep", *args, f"sqlite:///{missing}"]) == 2
    assert f"no MLflow store at sqlite:///{missing}" in capsys.readouterr().err
    assert not missing.parent.exists() and not (tmp_path / "r.html").exists()  # reading never creates a store


def test_a_lone_run_without_nightly_history_still_gets_a_page(tmp_path, tmp_path_factory, capsys):
    uri = fresh_store(tmp_path_factory, tmp_path)
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("solo"), run_name="one")
    client.log_metric(run.info.run_id, "val_acc", 0.5, step=1)
    client.create_experiment("empty")
    assert main(["report", "empty", "-o", str(tmp_path / "r.html"), "--tracking-uri", uri]) == 2
    assert "error: experiment empty holds no runs yet" in capsys.readouterr().err
    page = report(tmp_path, uri, "solo")
    assert "No run tagged nightly.parent=true in this store" in page and 'id="nightly"' not in page
    assert 'id="learning-curves"' in page and "No configuration has both val_acc and an invariance error" in page
    assert "<td>(one configuration)</td><td>1</td><td>0.5</td><td>best</td>" in page


def test_mean_per_class_accuracy_gets_its_own_robustness_table_beside_the_overall_one():
    def run(seed: int, acc: float, per_class: float) -> Row:
        return Row(
            axes={"representation.name": "fa", "seed": str(seed)},
            status="finished",
            metrics={
                "val_acc": acc,
                "val_mean_class_acc": per_class,
                "test_acc/so3": acc,
                "test_mean_class_acc/so3": per_class,
            },
            tags={"axis.representation": "fa", "axis.backbone": "pointnet", "axis.hypernet": "none"},
            params={"dataset.rotation.train": "z"},
        )

    rows = [run(0, 0.90, 0.80), run(1, 0.92, 0.84), run(2, 0.91, 0.82)]
    page = render(ReportData("t", "sqlite:///x.db", "val_acc", "max", rows, {}, Nightly(note="none")))
    board = page[page.index('<table class="leaderboard">') : page.index("</table>")]
    headers = re.findall(r"<th>([^<]+)</th>", board)
    assert headers[2:6] == ["val_acc", "vs best", "val_mean_class_acc", "test_acc/so3"]
    assert "<td>0.82 +- 0.02 [0.77, 0.87]</td>" in board  # val_mean_class_acc over 3 seeds
    tables = re.findall(r'<table class="robustness">(.*?)</table>', page)
    assert len(tables) == 2
    assert "<td>0.910 +- 0.010 [0.885, 0.935] (3)</td>" in tables[0]
    assert "<td>0.820 +- 0.020 [0.770, 0.870] (3)</td>" in tables[1]
    assert "test_mean_class_acc/&lt;protocol&gt;:" in page
