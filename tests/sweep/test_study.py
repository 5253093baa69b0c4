"""`searcher: optuna` keeps its study in a journal file, driven here as Tune drives a searcher (no Ray started)."""

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from geosweep.sweep.config import SweepConfig
from geosweep.sweep.run import searcher
from geosweep.sweep.space import param_space
from geosweep.sweep.study import journal_path


def optuna_sweep(tiny_config: dict, storage_path: str) -> SweepConfig:
    return SweepConfig.model_validate(
        {
            "name": "s",
            "base": tiny_config,
            "storage_path": storage_path,
            "searcher": {"name": "optuna", "num_samples": 3},
            "space": {"optimizer.lr": {"loguniform": [1e-4, 1e-2]}},
        }
    )


def test_the_study_is_a_journal_in_the_sweeps_tune_directory_and_survives_a_resume(tiny_config, tmp_path):
    spec = optuna_sweep(tiny_config, str(tmp_path / "ray"))
    algorithm = searcher(spec, parent_run_id="abc123")
    assert algorithm.set_search_properties(spec.metric, spec.mode, param_space(spec))  # as Tune does at start
    for trial, val_acc in (("t0", 0.5), ("t1", 0.7)):
        algorithm.suggest(trial)
        algorithm.on_trial_complete(trial, {spec.metric: val_acc})
    # Tune saves the searcher with the sweep's state and restores it on --resume: the study goes on in the journal.
    algorithm.save(str(tmp_path / "searcher.pkl"))
    restored = searcher(spec, parent_run_id="abc123")
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.suggest("t2")
    restored.on_trial_complete("t2", {spec.metric: 0.6})

    journal = tmp_path / "ray" / "s" / "optuna.journal"
    assert journal_path(spec) == journal
    study = optuna.load_study(study_name="s-abc123", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [trial.value for trial in study.trials] == [0.5, 0.7, 0.6] and study.best_value == 0.7
    assert all(1e-4 <= trial.params["optimizer.lr"] <= 1e-2 for trial in study.trials)


def test_without_a_file_system_or_a_run_the_study_stays_in_memory(tiny_config, tmp_path):
    assert journal_path(optuna_sweep(tiny_config, "s3://bucket/ray")) is None
    assert journal_path(optuna_sweep(tiny_config, f"file://{tmp_path}")) == tmp_path / "s" / "optuna.journal"
    spec = optuna_sweep(tiny_config, str(tmp_path / "ray"))
    searcher(spec)  # no parent run (validation, tests): nothing written
    assert not (tmp_path / "ray").exists()
