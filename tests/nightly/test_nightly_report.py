"""The regression report: verdict and regressions first, every tracked metric after, HTML escaped."""

from geosweep.nightly.compare import compare_metric
from geosweep.nightly.report import Night, html_page, markdown
from geosweep.nightly.suite import Tolerance

ACCURACY = Tolerance(better="higher", absolute=0.05)
TAGS = {"git.sha": "abc123", "git.dirty": "false", "hardware.cpu": "Some CPU", "hardware.cpu_cores": "2"}


def night(**fields) -> Night:
    comparisons = [
        compare_metric("shapes-pointnet-raw-none", "val_acc", 0.07, [0.72, 0.71], ACCURACY, 5),
        compare_metric("shapes-pointnet-raw-none", "test_acc/so3", 0.27, [0.27], ACCURACY, 5),
        compare_metric("tsp20-<raw>", "val_gap", 3.0, [], Tolerance(better="lower", absolute=0.5), 5),
    ]
    return Night(
        **{
            "suite": "nightly",
            "date": "2025-01-03",
            "status": "regressed",
            "window": 5,
            "comparisons": comparisons,
            "failures": {},
            "tags": TAGS,
            **fields,
        }
    )


def test_markdown_puts_the_verdict_and_the_regressed_metric_first():
    report = markdown(night(failures={"shapes-broken": "WorkerGroupError: ValueError: max_points"}))
    head, rest = report.split("## Regressions", 1)
    assert head.startswith("# Nightly `nightly`, 2025-01-03: REGRESSED")
    assert "git abc123 (dirty: false); Some CPU (2 cores)" in head and "last 5 passed nights" in head
    assert "- `shapes-broken`: WorkerGroupError: ValueError: max_points" in head
    regressions, everything = rest.split("## Every tracked metric", 1)
    assert regressions.count("| `shapes-pointnet-raw-none` |") == 1
    assert (
        "| `val_acc (higher is better)` | 0.715 (2 nights) | 0.07 | -0.645 | drop <= 0.05 | **regressed** |"
        in regressions
    )
    assert "| ok |" in everything and "| - | 3 | - | - | new |" in everything


def test_a_passed_night_says_so_and_lists_no_regression():
    report = markdown(night(status="passed", comparisons=night().comparisons[1:]))
    assert "2025-01-03: PASSED" in report and "## Regressions\n\nNone.\n" in report and "Failed entries" not in report


def test_html_is_one_escaped_page_with_the_same_rows():
    page = html_page(night(failures={"x": "error <b>"}))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http" not in page  # self-contained
    assert "<td>tsp20-&lt;raw&gt;</td>" in page and "error &lt;b&gt;" in page
    assert "<td>val_acc (higher is better)</td>" in page and page.count("<td class='regressed'>regressed</td>") == 2
