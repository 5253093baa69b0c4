"""`geosweep report` on a real MLflow store: what the page holds, and clear errors for bad input."""

import html
import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from comparison.test_importance import grid_rows
from geosweep.cli import main
from geosweep.comparison.rows import Row
from geosweep.report.collect import Nightly, ReportData, collect
from geosweep.report.figures import learning_curves
from geosweep.report.links import ui_address
from geosweep.report.page import render
from report.sweep_store import fresh_store


def report(tmp_path: Path, uri: str, *args: str) -> str:
    assert main(["report", *args, "-o", str(tmp_path / "report.html"), "--tracking-uri", uri]) == 0
    return (tmp_path / "report.html").read_text()


def tables(page: str, css_class: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each table of `css_class` as the reader sees its text: (header, rows of cells)."""

    def text(cell: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", cell))

    found = []
    for body in re.findall(rf'<table class="{css_class}">(.*?)</table>', page):
        header = [text(h) for h in re.findall(r"<th>(.*?)</th>", body)]
        rows = [[text(c) for c in re.findall(r"<td>(.*?)</td>", row)] for row in re.findall(r"<tr>(.*?)</tr>", body)]
        found.append((header, [row for row in rows if row]))
    return found


def test_sweep_report_holds_every_section(report_store, tmp_path, capsys):
    page = report(tmp_path, report_store["uri"], "ui-sweep")
    assert "report.html: report of sweep ui-sweep (8 runs, val_acc)" in capsys.readouterr().out
    assert "8 runs (1 failed, 7 finished)" in page
    for div in ("parallel-coordinates", "pareto", "learning-curves", "nightly"):
        assert f'id="{div}"' in page, div
    # The leaderboard: 4 configurations (representation x training rotation), 2 seeds each, best first; the
    # metric, its per-protocol results and one certificate, the rest (status too) in the detail table.
    [(header, board)] = tables(page, "leaderboard")
    assert header == [
        "configuration", "seeds", "val_acc", "vs best", "test_acc/none", "test_acc/so3", "test_acc/z",
        "invariance/pred_agreement",
    ]  # fmt: skip
    assert len(board) == 4 and all(row[1] == "2" for row in board)
    assert board[0][0] == "dataset.rotation.train=z, representation.name=raw"
    [(detail_header, detail)] = tables(page, "leaderboard-detail")
    assert detail_header == ["configuration", "invariance/max_logit_diff", "trial s", "status"]
    assert [row[0] for row in detail] == [row[0] for row in board] and "1 failed" in {row[-1] for row in detail}
    # The robustness table: z/z, z/SO3 and SO3/SO3 per representation x backbone.
    header, robustness = tables(page, "robustness")[0]
    assert {"z/z", "z/so3", "so3/so3"} <= set(header)
    raw = next(row for row in robustness if row[:3] == ["raw", "pointnet", "none"])
    cells = dict(zip(header[3:], raw[3:], strict=True))
    # Sample SD and the 95 % interval over the 2 seeds; one seed alone (the other failed) says n = 1, no spread.
    assert cells["z/so3"] == "0.255 +- 0.007 [0.191, 0.319] (n = 2)" and cells["so3/so3"] == "0.800 (n = 1)"


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
    assert tables(page, "leaderboard")[0][1] == [["(one configuration)", "1", "0.5 (n = 1)", "best"]]


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
    [(header, _)] = tables(page, "leaderboard")
    assert header[2:] == ["val_acc", "vs best", "test_acc/so3"]  # the per-class ones go to the detail table
    [(header, [detail])] = tables(page, "leaderboard-detail")
    assert header[1:3] == ["val_mean_class_acc", "test_mean_class_acc/so3"]
    assert detail[1] == "0.82 +- 0.02 [0.77, 0.87]"  # val_mean_class_acc over 3 seeds
    overall, per_class = tables(page, "robustness")
    assert overall[1][0][-1] == "0.910 +- 0.010 [0.885, 0.935] (n = 3)"
    assert per_class[1][0][-1] == "0.820 +- 0.020 [0.770, 0.870] (n = 3)"
    assert "test_mean_class_acc/&lt;protocol&gt;:" in page


def test_every_leaderboard_row_and_plotted_point_links_its_runs_when_the_ui_is_known(report_store, tmp_path):
    page = report(tmp_path, report_store["uri"], "ui-sweep", "--mlflow-url", "http://127.0.0.1:5000/")
    client = MlflowClient(report_store["uri"])
    runs = client.search_runs([client.get_run(report_store["parent_run_id"]).info.experiment_id])
    expected = {
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        for run in runs
        if run.info.run_id != report_store["parent_run_id"]
    }
    [(header, board)] = tables(page, "leaderboard")
    assert header[-1] == "runs" and all(row[-1] in ("seed 0 seed 1", "seed 1 seed 0") for row in board)
    board_html = re.search(r'<table class="leaderboard">(.*?)</table>', page).group(1)
    assert set(re.findall(r'<a [^>]*href="([^"]+)"', board_html)) == expected  # all 8 runs, the failed one too
    data = collect(report_store["uri"], "ui-sweep", mlflow_url="http://127.0.0.1:5000")
    curves = learning_curves(data.curves, data.metric, data.ui_address)
    assert {link for trace in curves.data for link in trace.customdata} <= expected and len(curves.data) == 7
    assert all(len(set(trace.customdata)) == 1 for trace in curves.data)  # each curve's points: its own run
    assert "window.open(link" in page  # a click on a point opens its link


def test_no_links_without_a_ui_address_and_a_server_uri_gives_its_own_without_credentials(report_store, tmp_path):
    page = report(tmp_path, report_store["uri"], "ui-sweep")  # a SQLite store: no UI address
    assert "/#/experiments/" not in page and "window.open(link" not in page
    assert tables(page, "leaderboard")[0][0][-1] != "runs"
    assert ui_address("https://alice:secret@mlflow.example.org:8443/base/") == "https://mlflow.example.org:8443/base"
    assert ui_address("sqlite:///x.db") is None and ui_address("sqlite:///x.db", "http://h:5000") == "http://h:5000"
    args = ["report", "ui-sweep", "-o", str(tmp_path / "r.html"), "--tracking-uri", report_store["uri"]]
    assert main([*args, "--mlflow-url", "127.0.0.1:5000"]) == 2


def test_the_report_ranks_parameters_by_importance_or_says_there_are_too_few_runs(report_store, tmp_path):
    page = report(tmp_path, report_store["uri"], "ui-sweep")
    assert "7 finished runs with val_acc: too few for an importance estimate" in page
    assert "Finished runs only: 1 failed, stopped early or running left out." in page
    rows = grid_rows()
    page = render(ReportData("t", "sqlite:///x.db", "val_acc", "max", rows, {}, Nightly(note="none")))
    [(header, importance)] = tables(page, "importance")
    assert header == ["parameter", "importance"] and [row[0] for row in importance] == [
        "representation.name",
        "backbone.name",
    ]
    assert "fANOVA" in page and "over 27 runs" in page
