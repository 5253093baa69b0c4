"""Links from the report into the MLflow UI: known for a tracking server (http/https) or a UI address given.

A SQLite or file store has no UI address of its own (`mlflow ui` serves one wherever it is started):
`geosweep report --mlflow-url` gives it; without one the page has no links.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from geosweep.comparison.rows import Row

# Opens a clicked point's run: the figures put each point's link in its customdata.
CLICK_SCRIPT = """<script>
for (const plot of document.querySelectorAll(".js-plotly-plot")) {
  plot.on("plotly_click", (event) => {
    const link = event.points[0].customdata;
    if (typeof link === "string" && link.startsWith("http")) window.open(link, "_blank");
  });
}
</script>"""


def ui_address(tracking_uri: str, mlflow_url: str | None = None) -> str | None:
    """The MLflow UI's address: `mlflow_url`, else an http(s) tracking URI; None for a store without one.

    Credentials in the URL never reach the page.
    """
    address = mlflow_url or (tracking_uri if tracking_uri.startswith(("http://", "https://")) else None)
    if not address:
        return None
    parts = urlsplit(address)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def run_link(address: str | None, row: Row) -> str | None:
    """The run's page in the MLflow UI at `address`; None without an address or a run."""
    if not address or not row.run_id or not row.experiment_id:
        return None
    return f"{address}/#/experiments/{row.experiment_id}/runs/{row.run_id}"
