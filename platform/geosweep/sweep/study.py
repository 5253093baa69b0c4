"""Where `searcher: optuna` keeps its study: a journal file in the sweep's Tune directory, so optuna-dashboard opens it.

Ray's OptunaSearch takes the storage and a study name itself; Tune pickles the searcher with the sweep's state,
so a resumed sweep goes on writing the same study. Each run of a sweep is its own study, named after its
MLflow parent run. A journal needs a file system: with an s3:// or gs:// storage_path the study stays in memory.
"""

from __future__ import annotations

from pathlib import Path

from geosweep.sweep.config import SweepConfig

JOURNAL = "optuna.journal"


def journal_path(sweep: SweepConfig) -> Path | None:
    """The sweep's study journal, `<storage_path>/<name>/optuna.journal`; None without a local storage_path."""
    storage = (sweep.storage_path or "").removeprefix("file://")
    if not storage or "://" in storage:
        return None
    return Path(storage) / sweep.name / JOURNAL


def study_name(sweep: SweepConfig, parent_run_id: str) -> str:
    """One study per run of the sweep: `<sweep name>-<MLflow parent run id>`."""
    return f"{sweep.name}-{parent_run_id}"


def study_storage(sweep: SweepConfig):
    """The journal storage of the sweep's study (its directory made if need be), or None for an in-memory study."""
    path = journal_path(sweep)
    if path is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))
