"""The report's tables: the rotation-robustness table, and any table as escaped HTML."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from typing import get_args

from geosweep.comparison.figures import finite
from geosweep.comparison.groups import Spread, protocol_prefix, spread_text
from geosweep.comparison.rows import Row
from geosweep.data.rotations import RotationProtocol

AXES = ("representation", "backbone", "hypernet")
ORDER = get_args(RotationProtocol)  # none, z, so3: columns read from easy to hard


def rank(name: str) -> tuple[int, str]:
    """Sort key for a rotation protocol: the known ones from easy to hard, then any other by name."""
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def robustness(rows: list[Row], metric: str) -> tuple[list[str], list[list[str]]]:
    """Per-protocol test results by training rotation, per representation x backbone x hypernet.

    Columns read `train/test` (z/z, z/so3, so3/so3, ...) from each run's
    `dataset.rotation.train` param and its `test_acc/<protocol>` metrics (for
    `val_gap`: `test_gap/<variant>`, with no training rotation). Failed runs are
    left out; a cell is mean +- sample SD [95 % interval] (n = runs) over seeds and any other setting.

    Returns:
        (header, rows of text cells); no rows when no run logged such a metric.
    """
    prefix = protocol_prefix(metric)
    cells: dict[tuple[str, ...], dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.status == "failed":
            continue
        key = tuple(row.tags.get(f"axis.{axis}", "-") for axis in AXES)
        train = row.params.get("dataset.rotation.train", "")
        for name, value in row.metrics.items():
            if name.startswith(prefix) and finite(value) is not None:
                cells[key][(train, name.removeprefix(prefix))].append(value)
    columns = sorted(
        {column for by_column in cells.values() for column in by_column}, key=lambda c: (rank(c[0]), rank(c[1]))
    )
    header = [*AXES, *(f"{train}/{test}" if train else test for train, test in columns)]
    table = []
    for key in sorted(cells):
        texts = []
        for column in columns:
            values = cells[key].get(column, [])
            count = f" (n = {len(values)})" if len(values) > 1 else ""  # one value says n = 1 itself
            texts.append(spread_text(Spread(tuple(values)), ".3f") + count if values else "-")
        table.append([*key, *texts])
    return header, table


class Html(str):
    """A cell that is HTML already (links): html_table puts it in as it is."""


# spread_text's 'mean +- sd [low, high]' or 'value (n = 1)', maybe with a count: breaks go before a bracket only.
SPREAD = re.compile(r"\S+( \+- \S+)?( \[[^\]]*\])?( \(n = \d+\))?")


def cell_html(text: str) -> str:
    """A cell's text, escaped; a spread breaks before its interval or count only, never inside a number."""
    if isinstance(text, Html):
        return text
    if SPREAD.fullmatch(text) is None:
        return html.escape(text)
    return " ".join(f'<span class="unit">{html.escape(part)}</span>' for part in re.split(r" (?=[\[(])", text))


def html_table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """An HTML table of text cells, escaped (Html cells as they are); long metric names may break after a '/'."""
    head = "".join(f"<th>{html.escape(h).replace('/', '/<wbr>')}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell_html(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
