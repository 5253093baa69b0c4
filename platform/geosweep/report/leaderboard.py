"""The report's leaderboard: a main table that fits a laptop screen, every other column in a collapsed detail table.

The main table holds the ranking metric, its per-protocol test results and one certificate (prediction agreement
under rotations where runs logged it), with links to each configuration's runs when the MLflow UI is known.
"""

from __future__ import annotations

import html

from geosweep.comparison.groups import protocol_prefix, table_cells
from geosweep.report.links import run_link
from geosweep.report.tables import Html, html_table

# The one certificate the main table shows, first found wins: agreement reads at a glance (1.0 = invariant).
CERTIFICATES = ("invariance/rotation_pred_agreement", "invariance/pred_agreement", "invariance/tour_agreement")


def main_columns(metric: str, columns: list[str]) -> list[str]:
    """Of the result `columns`, those the main table shows: `metric`'s per-protocol results and one certificate."""
    protocols = [c for c in columns if c.startswith(protocol_prefix(metric))]
    certificates = [c for c in CERTIFICATES if c in columns] or [c for c in columns if c.startswith("invariance/")]
    return protocols + certificates[:1]


def runs_cell(group: dict, address: str | None) -> Html:
    """Links to a configuration's runs in the MLflow UI, each named by its seed."""
    links = []
    for row in group["rows"]:
        seed = row.axes.get("seed")
        label = html.escape(f"seed {seed}" if seed is not None else row.run_name or row.run_id)
        link = html.escape(run_link(address, row) or "", quote=True)
        links.append(f'<a class="unit" href="{link}" title="{html.escape(row.run_name, quote=True)}">{label}</a>')
    return Html(" ".join(links))


def leaderboard_html(groups: list[dict], metric: str, columns: list[str], address: str | None) -> str:
    """The main table (with a `runs` column of links when `address`, the MLflow UI, is known) and the detail table.

    Args:
        groups: configurations as geosweep.comparison.groups.group_rows makes them, best first.
        metric: the ranking metric.
        columns: every result column (geosweep.comparison.groups.result_columns).
        address: the MLflow UI's address, or None for no links.
    """
    header, cells = table_cells(groups, metric, columns)
    shown = {"configuration", "seeds", metric, "vs best", *main_columns(metric, columns)}
    main = [i for i, name in enumerate(header) if name in shown]
    detail = [0] + [i for i, name in enumerate(header) if name not in shown]
    main_header = [header[i] for i in main] + (["runs"] if address else [])
    main_rows = [
        [row[i] for i in main] + ([runs_cell(group, address)] if address else [])
        for row, group in zip(cells, groups, strict=True)
    ]
    details = html_table([header[i] for i in detail], [[row[i] for i in detail] for row in cells], "leaderboard-detail")
    return (
        html_table(main_header, main_rows, "leaderboard")
        + f"<details><summary>More columns: {html.escape(', '.join(header[i] for i in detail[1:]))}</summary>"
        + f'<div class="wide">{details}</div></details>'
    )
