"""The report page in a real headless Chromium: no console errors, every plot drawn, a screenshot that is not blank."""

from geosweep.report.page import write_report
from report.browser import browser_page

PLOTS = ("parallel-coordinates", "pareto", "learning-curves", "nightly")


def test_report_page_loads_without_errors_and_draws_every_plot(report_store, tmp_path):
    page_file = tmp_path / "report.html"
    write_report(report_store["uri"], "ui-sweep", page_file)
    with browser_page(tmp_path / "profile") as (page, errors):
        page.goto(page_file.as_uri())
        for div in PLOTS:  # plotly draws into .main-svg once the figure is laid out
            page.wait_for_selector(f"#{div} .main-svg", state="attached", timeout=20_000)
        sizes = {div: page.eval_on_selector(f"#{div}", "e => [e.offsetWidth, e.offsetHeight]") for div in PLOTS}
        marks = {  # what each figure drew: lines, markers, axis ticks
            div: page.eval_on_selector(f"#{div}", "e => e.querySelectorAll('svg path, svg text').length")
            for div in PLOTS
        }
        texts = "e => [...e.querySelectorAll('text')].map(t => t.textContent)"
        parcoords_ticks = page.eval_on_selector("#parallel-coordinates", texts)
        screenshot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert not errors, errors
    assert all(w > 400 and h > 300 for w, h in sizes.values()), sizes
    assert all(n > 10 for n in marks.values()), marks
    assert {"failed", "missing", "representation.name", "dataset.rotation.train", "val_acc"} <= set(parcoords_ticks)
    assert len(screenshot) > 100_000  # a blank page of this size compresses to a few kB
    assert len(set(screenshot[::97])) > 200  # and its bytes are anything but uniform
