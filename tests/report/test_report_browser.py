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


def test_the_report_fits_a_1400_pixel_window_and_links_rows_and_points_into_mlflow(report_store, tmp_path):
    ui = "http://127.0.0.1:5000"  # never contacted: the browser's requests to it are answered below
    page_file = tmp_path / "report.html"
    write_report(report_store["uri"], "ui-sweep", page_file, mlflow_url=ui)
    with browser_page(tmp_path / "profile", width=1400, height=900) as (page, errors):
        page.context.route(f"{ui}/**", lambda route: route.fulfill(body="mlflow ui", content_type="text/html"))
        page.goto(page_file.as_uri())
        page.wait_for_selector("#learning-curves .main-svg", state="attached", timeout=20_000)
        screenshot = page.screenshot(path=str(tmp_path / "report-1400.png"))
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        board = page.locator("table.leaderboard")
        board_visible, box = board.is_visible(), board.bounding_box()
        links = board.locator("a").evaluate_all("links => links.map(a => a.href)")
        detail_hidden = not page.locator("table.leaderboard-detail").is_visible()  # collapsed until opened
        # A click on a learning curve's point opens its run in the MLflow UI.
        marker = page.locator("#learning-curves .point").first
        marker.scroll_into_view_if_needed()
        point = marker.bounding_box()
        page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
        page.wait_for_timeout(300)  # plotly finds the hovered point on a throttled mousemove
        with page.context.expect_page() as opened:
            page.mouse.down()
            page.mouse.up()
        opened_url = opened.value.url
    assert not errors, errors
    assert int.from_bytes(screenshot[16:20], "big") == 1400  # the PNG's width: the window's
    assert scroll_width <= 1400, f"the page scrolls sideways: {scroll_width} px"
    assert board_visible and box["x"] >= 0 and box["x"] + box["width"] <= 1400, box  # all of it, no scrolling
    assert detail_hidden
    assert len(links) == 8 and all(link.startswith(f"{ui}/#/experiments/") for link in links)
    assert opened_url in links
