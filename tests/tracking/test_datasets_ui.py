"""The MLflow UI's runs table shows a run's datasets (its Dataset column read `-` before #18), in Chromium."""

from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.registry import DATASETS
from geosweep.tracking import EpochLogger
from geosweep.tracking.datasets import run_datasets
from geosweep.tracking.mlflow_run import experiment_id
from geosweep.tracking.server import local_server
from report.browser import browser_page
from tracking.test_datasets import shapes_config


def test_the_runs_table_lists_the_runs_datasets(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = experiment_id(client, "ui-datasets")
    run_id = client.create_run(experiment, run_name="with-datasets").info.run_id
    config = parse_run_config(shapes_config())
    datasets = run_datasets(config, DATASETS.build("shapes", config.dataset.kwargs, seed=config.seed))
    with EpochLogger(uri, run_id) as logger:
        logger.log_datasets_once(datasets)

    with local_server(tmp_path, backend_store_uri=uri) as base, browser_page(tmp_path / "profile", 1600) as (page, _):
        page.goto(f"{base}/#/experiments/{experiment}/runs")
        page.get_by_role("link", name="with-datasets", exact=True).wait_for(timeout=60_000)
        cell = page.locator('[role="gridcell"][col-id="attributes.`Dataset`"]')  # the store's one run
        cell.get_by_text(f"shapes-train ({datasets['training'].digest})").wait_for(timeout=20_000)
        shown = cell.inner_text()  # all six, the ones past the column's width behind a "+n"
        for context, dataset in datasets.items():
            assert f"{dataset.digest})\n{context.title()}" in shown, context  # e.g. "...)\nTest/So3"
        page.screenshot(path=str(tmp_path / "datasets.png"))
