"""The report as one self-contained HTML page: plotly.js is inlined once, so it opens with no network."""

from __future__ import annotations

import datetime
import html
from collections import Counter
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from geosweep.comparison.figures import parallel_coordinates
from geosweep.comparison.groups import COMPANIONS, group_rows, protocol_prefix, result_columns, varying_axes
from geosweep.comparison.importance import param_importance
from geosweep.comparison.rows import Row
from geosweep.report import figures
from geosweep.report.collect import ReportData, collect
from geosweep.report.leaderboard import leaderboard_html
from geosweep.report.links import CLICK_SCRIPT
from geosweep.report.tables import html_table, robustness

# Invariance errors (lower is better) the scatter can put on its x axis, first found wins: the rotation
# certificate every classifier gets, the claimed-groups one (older runs), TSP's tour-length difference.
INVARIANCE_ERRORS = (
    "invariance/rotation_max_logit_diff",
    "invariance/max_logit_diff",
    "invariance/tour_len_max_rel_diff",
)

# Laid out for a 1400-pixel window: the leaderboard fits as it is; wider tables scroll inside their own box.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 1320px; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.unit { white-space: nowrap; }
.wide { overflow-x: auto; }
code { overflow-wrap: anywhere; }
summary { cursor: pointer; color: #555; }
.note { color: #666; font-style: italic; }
"""


def plot(figure: go.Figure, div_id: str) -> str:
    """The figure as a div with id `div_id`, using the page's one copy of plotly.js."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def wide(table: str) -> str:
    """A table that scrolls sideways in its own box when it is wider than the page."""
    return f'<div class="wide">{table}</div>'


def note(text: str) -> str:
    """A paragraph of explanatory text, escaped."""
    return f'<p class="note">{html.escape(text)}</p>'


def render(data: ReportData) -> str:
    """The whole page: leaderboard, parallel coordinates, importance, Pareto scatter, robustness, curves, nightly."""
    rows, metric, mode = data.rows, data.metric, data.mode
    columns = result_columns(metric, (name for row in rows for name in row.metrics))
    groups = group_rows(rows, metric, mode, columns)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(Counter(r.status for r in rows).items()))
    sections = [
        f"<h1>geosweep report: {html.escape(data.title)}</h1>",
        f"<p>{len(rows)} runs ({counts}) in <code>{html.escape(data.tracking_uri)}</code>; ranked by "
        f"<b>{html.escape(metric)}</b> ({mode}); generated {datetime.datetime.now():%Y-%m-%d %H:%M}.</p>",
        "<h2>Leaderboard</h2>",
        note(
            "Configurations grouped over seeds, never best-of: mean +- sample SD [95 % t-interval of the mean]. "
            "vs best: '~ best' where Welch's t-test (two-sided, 5 %) cannot tell it from the best."
        ),
        leaderboard_html(groups, metric, columns, data.ui_address),
        "<h2>Parallel coordinates</h2>",
        plot(parallel_coordinates(rows, varying_axes(rows), metric, mode), "parallel-coordinates"),
    ]
    if data.ui_address:
        sections.append(
            note("These lines carry no links (plotly's parallel coordinates take no clicks): the leaderboard's do.")
        )

    sections.append("<h2>Parameter importance</h2>")
    sections += importance_section(rows, metric, mode)

    sections.append("<h2>Accuracy vs invariance error</h2>")
    error = next((e for e in INVARIANCE_ERRORS if e in columns), None)
    scatter = figures.pareto_scatter(groups, metric, mode, error, data.ui_address) if error else None
    if scatter is None:
        sections.append(
            note(f"No configuration has both {metric} and an invariance error ({', '.join(INVARIANCE_ERRORS)}).")
        )
    else:
        if error == "invariance/max_logit_diff":
            sections.append(
                note(
                    f"{error} is certified under the transformations each representation claims: "
                    "one that claims none (raw) is certified under permutations alone."
                )
            )
        sections.append(plot(scatter, "pareto"))

    sections.append("<h2>Rotation robustness (train/test)</h2>")
    header, table = robustness(rows, metric)
    missing = note(f"No run logged {protocol_prefix(metric)}<protocol> metrics.")
    sections.append(wide(html_table(header, table, "robustness")) if table else missing)
    for companion in COMPANIONS.get(metric, ()):  # mean per-class accuracy beside the overall one
        header, table = robustness(rows, companion)
        if table:
            sections += [
                note(f"{protocol_prefix(companion)}<protocol>:"),
                wide(html_table(header, table, "robustness")),
            ]

    sections.append("<h2>Learning curves</h2>")
    if data.curves:
        sections.append(plot(figures.learning_curves(data.curves, metric, data.ui_address), "learning-curves"))
    else:
        sections.append(note(f"No run logged {metric} per epoch."))

    sections.append("<h2>Nightly trends</h2>")
    if data.nightly.series:
        sections.append(plot(figures.nightly_trends(data.nightly.series, first=metric), "nightly"))
    if data.nightly.note:
        sections.append(note(data.nightly.note))

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>geosweep report: {html.escape(data.title)}</title>"
        f'<link rel="icon" href="data:,"><style>{STYLE}</style>'
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>\n'
        + "\n".join(sections)
        + ("\n" + CLICK_SCRIPT if data.ui_address else "")
        + "\n</body></html>\n"
    )


def importance_section(rows: list[Row], metric: str, mode: str) -> list[str]:
    """Each parameter's share of `metric`'s variance over the finished runs, or why there is no estimate."""
    importance = param_importance(rows, metric, mode)
    policy = f"Finished runs only: {importance.left_out} failed, stopped early or running left out."
    if not importance.values:
        return [note(f"{importance.note} {policy}")]
    table = [[param, f"{value:.3f}"] for param, value in importance.values.items()]
    return [
        note(
            f"{importance.method} over {importance.runs} runs: each parameter's share of {metric}'s variance "
            f"(they sum to 1; the seed is not a parameter but the noise they stand out from). {policy}"
        ),
        html_table(["parameter", "importance"], table, "importance"),
    ]


def write_report(
    tracking_uri: str,
    name: str,
    output: Path,
    metric: str | None = None,
    mode: str | None = None,
    mlflow_url: str | None = None,
) -> ReportData:
    """Collect experiment or sweep `name` from MLflow and write its page to `output`.

    Args:
        tracking_uri: the MLflow store.
        name: an experiment name, else a sweep name.
        output: the page to write.
        metric: the metric to rank by (default: the sweep's, else val_acc).
        mode: "max" or "min" (default: the sweep's, else "max").
        mlflow_url: the MLflow UI to link runs into (default: the tracking URI when it is a server's).

    Returns:
        What the page shows.

    Raises:
        ReportError: a missing store, an unknown experiment or sweep, or one with no runs; a bad `mlflow_url`.
    """
    data = collect(tracking_uri, name, metric, mode, mlflow_url)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(data))
    return data
