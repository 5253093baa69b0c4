"""The regression report of one night, in markdown (stdout, MLflow) and as a self-contained HTML page (MLflow)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from geosweep.nightly.compare import FAILING, Comparison


@dataclass(frozen=True)
class Night:
    """Everything one night's report shows."""

    suite: str
    date: str
    status: str  # passed | regressed
    window: int  # K
    comparisons: list[Comparison]
    failures: dict[str, str]  # entry -> what went wrong
    tags: dict[str, str]  # the parent run's: git and hardware


COLUMNS = ("entry", "metric", "baseline", "tonight", "change", "allowed", "status")


def rows(comparisons: list[Comparison]) -> list[tuple[str, ...]]:
    """Table cells per comparison, in COLUMNS order."""

    def number(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else (f"{value:+.4g}" if signed else f"{value:.4g}")

    table = []
    for c in comparisons:
        worse = "drop" if c.better == "higher" else "rise"
        baseline = "-" if c.baseline is None else f"{c.baseline:.4g} ({c.nights} night{'s' * (c.nights != 1)})"
        allowed = "-" if c.allowed is None else f"{worse} <= {c.allowed:.4g}"
        metric = f"{c.metric} ({c.better} is better)"
        table.append((c.entry, metric, baseline, number(c.current), number(c.change, signed=True), allowed, c.status))
    return table


def summary_lines(night: Night) -> list[str]:
    """The report's preamble: what the night ran on (git, hardware) and what the baseline is."""
    tags = night.tags
    gpu = f", GPU {tags['hardware.gpu']}" if "hardware.gpu" in tags else ""
    return [
        (
            f"git {tags.get('git.sha', 'unknown')} (dirty: {tags.get('git.dirty', 'unknown')}); "
            f"{tags.get('hardware.cpu', '?')} ({tags.get('hardware.cpu_cores', '?')} cores){gpu}"
        ),
        (
            f"Baseline: per entry and metric, the median of the last {night.window} passed nights of this suite; "
            "a metric with no history starts its baseline tonight."
        ),
    ]


def markdown(night: Night) -> str:
    """The report as markdown: verdict, regressions and failed entries first, then every tracked metric."""
    failing = [c for c in night.comparisons if c.status in FAILING]
    lines = [f"# Nightly `{night.suite}`, {night.date}: {night.status.upper()}", "", *summary_lines(night), ""]
    if night.failures:
        lines += ["## Failed entries", ""] + [f"- `{entry}`: {error}" for entry, error in night.failures.items()] + [""]
    lines += ["## Regressions", ""] + (_markdown_table(rows(failing)) if failing else ["None."]) + [""]
    lines += ["## Every tracked metric", ""] + _markdown_table(rows(night.comparisons))
    return "\n".join(lines) + "\n"


def _markdown_table(cells: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in cells:
        entry, metric, *rest, status = row
        status = f"**{status}**" if status in FAILING else status
        lines.append("| " + " | ".join([f"`{entry}`", f"`{metric}`", *rest, status]) + " |")
    return lines


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.passed { color: #176f2c; } .regressed, .missing, .failed { color: #b00020; font-weight: bold; } .new { color: #555; }
"""


def html_page(night: Night) -> str:
    """The same report as one self-contained HTML page (no scripts, no external files)."""
    esc = html.escape
    failing = [c for c in night.comparisons if c.status in FAILING]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Nightly {esc(night.suite)} {esc(night.date)}</title>",
        f"<style>{STYLE}</style></head><body>",
        (
            f"<h1>Nightly <code>{esc(night.suite)}</code>, {esc(night.date)}: "
            f"<span class='{esc(night.status)}'>{esc(night.status.upper())}</span></h1>"
        ),
        *(f"<p>{esc(line)}</p>" for line in summary_lines(night)),
    ]
    if night.failures:
        parts += ["<h2>Failed entries</h2><ul>"]
        parts += [
            f"<li class='failed'><code>{esc(entry)}</code>: {esc(error)}</li>"
            for entry, error in night.failures.items()
        ]
        parts += ["</ul>"]
    parts += ["<h2>Regressions</h2>", _html_table(rows(failing)) if failing else "<p>None.</p>"]
    parts += ["<h2>Every tracked metric</h2>", _html_table(rows(night.comparisons)), "</body></html>"]
    return "\n".join(parts) + "\n"


def _html_table(cells: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{column}</th>" for column in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[:-1])
        + f"<td class='{html.escape(row[-1])}'>{html.escape(row[-1])}</td></tr>"
        for row in cells
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
