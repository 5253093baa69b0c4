"""The driver's callback without a Ray cluster: Tune's own Trial objects, a real MLflow store.

The real sweep (tests/sweep/test_sweep_run.py) shows the run marked before the next trial starts.
"""

from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial

from geosweep.sweep.mlflow_callback import STOPPED_AT_EPOCH_TAG, STOPPED_BY_TAG, MarkStoppedTrials
from geosweep.tracking import end_run
from report.sweep_store import fresh_store


def test_a_trial_stopped_before_its_last_epoch_is_marked_killed_and_stays_so(tmp_path, tmp_path_factory):
    uri = fresh_store(tmp_path_factory, tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment("callback")
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    runs, trials = {}, {}
    for trial_id, epoch in (("ab_00000", 4), ("ab_00001", 2)):  # ran every epoch; stopped at rung 2
        tags = {"mlflow.parentRunId": parent, "sweep.trial_id": trial_id}
        runs[trial_id] = client.create_run(experiment, run_name=trial_id, tags=tags).info.run_id
        trials[trial_id] = Trial("run_trial", trial_id=trial_id, stub=True)
        trials[trial_id].update_last_result({"epoch": epoch, "val_acc": 0.5})

    callback = MarkStoppedTrials(uri, parent, epochs=4, scheduler="asha")
    for trial in trials.values():
        callback.on_trial_complete(iteration=1, trials=list(trials.values()), trial=trial)

    stopped = client.get_run(runs["ab_00001"])
    assert stopped.info.status == "KILLED" and stopped.info.end_time
    assert stopped.data.tags[STOPPED_AT_EPOCH_TAG] == "2" and stopped.data.tags[STOPPED_BY_TAG] == "asha"
    finished = client.get_run(runs["ab_00000"])  # its own trial closes it
    assert finished.info.status == "RUNNING" and STOPPED_AT_EPOCH_TAG not in finished.data.tags
    # The stopped trial's driver, torn down next, sees its training fail: the run stays KILLED.
    end_run(uri, runs["ab_00001"], succeeded=False)
    assert client.get_run(runs["ab_00001"]).info.status == "KILLED"
    end_run(uri, runs["ab_00000"], succeeded=False)
    assert client.get_run(runs["ab_00000"]).info.status == "FAILED"
