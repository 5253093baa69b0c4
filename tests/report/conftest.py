"""The report tests read one MLflow store holding a sweep and a nightly history."""

import pytest

from report.sweep_store import shared_store


@pytest.fixture(scope="session")
def report_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{"uri": SQLite tracking URI, "parent_run_id": sweep ui-sweep's parent, "names": its trial runs' names}."""
    return shared_store(tmp_path_factory)
