"""A run's datasets in a real MLflow store: names, digests of the arrays, sources, contexts; logged once per run."""

import json
import pickle
import threading

import h5py
import mlflow.data
import numpy as np
from mlflow.tracking import MlflowClient

from geosweep.config import parse_run_config
from geosweep.registry import DATASETS
from geosweep.tracking import EpochLogger
from geosweep.tracking.datasets import run_datasets

CLOUD_CONTEXTS = {"training", "validation", "test", "test/none", "test/z", "test/so3"}
TOUR_CONTEXTS = {"training", "validation", "test"} | {
    f"test/{v}" for v in ("rotated", "reflected", "translated", "scaled", "all")
}


def shapes_config(**changes) -> dict:
    raw = {
        "dataset": {
            "name": "shapes",
            "kwargs": {"num_points": 32, "train_per_class": 2, "val_per_class": 1, "test_per_class": 1},
            "rotation": {"train": "z", "test": "so3"},
        },
        "representation": {"name": "raw"},
        "backbone": {"name": "pointnet"},
        "epochs": 1,
        "batch_size": 4,
        "seed": 0,
    }
    for section, value in changes.items():
        raw[section] = value if not isinstance(value, dict) else {**raw.get(section, {}), **value}
    return raw


def datasets_of(raw: dict) -> dict:
    config = parse_run_config(raw)
    data = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
    return run_datasets(config, data)


def digests(datasets: dict) -> dict[str, str]:
    return {context: dataset.digest for context, dataset in datasets.items()}


def source_tags(dataset) -> dict:
    return json.loads(dataset.to_dict()["source"])["tags"]


def test_generated_clouds_digests_follow_the_data_and_the_draws():
    base = datasets_of(shapes_config())
    assert set(base) == CLOUD_CONTEXTS
    assert digests(datasets_of(shapes_config())) == digests(base)  # the same data, the same digests
    assert len(set(digests(base).values())) == len(base)  # every input is different data

    reseeded = digests(datasets_of(shapes_config(seed=1)))
    assert all(reseeded[c] != digests(base)[c] for c in base)

    # Testing under z instead of so3 changes the fixed test set only; training clouds and their copies stay.
    z_tested = digests(datasets_of(shapes_config(dataset={"rotation": {"train": "z", "test": "z"}})))
    changed = {c for c in base if z_tested[c] != digests(base)[c]}
    assert changed == {"test"}


def test_generated_clouds_name_their_generator_seed_split_and_rotation():
    datasets = datasets_of(shapes_config(seed=3))
    assert datasets["training"].name == "shapes-train"
    assert datasets["test/so3"].name == "shapes-test/so3"
    train = source_tags(datasets["training"])
    assert train["generator"] == "shapes" and train["seed"] == 3 and train["split"] == "train"
    assert train["arguments"]["num_points"] == 32 and train["arguments"]["noise"] == 0.01  # defaults included
    assert (train["rotation"], train["drawn"]) == ("z", "every epoch")
    assert source_tags(datasets["validation"])["rotation"] == "z"
    assert source_tags(datasets["test"])["rotation"] == "so3"
    assert datasets["training"].to_dict()["source_type"] == "code"
    assert json.loads(datasets["validation"].to_dict()["profile"])["features_shape"] == [12, 32, 3]


def write_modelnet40(directory):
    """A tiny release in the HDF5 format: one train file and one test file of 8 clouds each, 2 classes."""
    directory.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        with h5py.File(directory / f"ply_data_{split}0.h5", "w") as h5:
            h5.create_dataset("data", data=rng.standard_normal((8, 32, 3)).astype(np.float32))
            h5.create_dataset("label", data=(np.arange(8) % 2).astype(np.uint8)[:, None])
        (directory / f"{split}_files.txt").write_text(f"ply_data_{split}0.h5\n")
    return directory


def test_a_file_dataset_names_the_path_the_user_gave(tmp_path):
    path = str(write_modelnet40(tmp_path / "modelnet40"))
    raw = shapes_config(dataset={"name": "modelnet40", "kwargs": {"path": path, "num_points": 16}}, batch_size=2)
    datasets = datasets_of(raw)
    assert set(datasets) == CLOUD_CONTEXTS
    for dataset in datasets.values():
        assert dataset.to_dict()["source_type"] == "local"
        assert mlflow.data.get_source(dataset).uri == path
    assert datasets["validation"].name == "modelnet40-val"


def tsp_config(tmp_path, **kwargs) -> dict:
    return {
        "task": {"name": "tsp"},
        "dataset": {
            "name": "tsp",
            "kwargs": {"num_nodes": 8, "val_size": 16, "test_size": 8, "data_dir": str(tmp_path / "tsp"), **kwargs},
        },
        "representation": {"name": "raw"},
        "backbone": {"name": "attention_model"},
        "epochs": 1,
        "batch_size": 4,
        "seed": 5,
    }


def test_tsp_training_instances_are_their_generator_and_the_test_copies_are_separate_inputs(tmp_path):
    datasets = datasets_of(tsp_config(tmp_path))
    assert set(datasets) == TOUR_CONTEXTS
    train = source_tags(datasets["training"])
    assert (train["generator"], train["seed"], train["split"]) == ("tsp", 5, "train")
    assert "features_shape" not in (datasets["training"].to_dict().get("profile") or "")  # no arrays: a description
    val = source_tags(datasets["validation"])
    assert val["arguments"]["val_seed"] == 4321 and val["split"] == "val"
    assert source_tags(datasets["test/rotated"])["transform"] == "rotated"
    assert len({d.digest for d in datasets.values()}) == len(datasets)
    # The reference tours are part of a fixed set's data: a set without them is another dataset.
    unreferenced = datasets_of(tsp_config(tmp_path, reference="none"))
    assert unreferenced["validation"].digest != datasets["validation"].digest


def test_a_tsp_test_file_is_the_test_inputs_source(tmp_path):
    test_file = tmp_path / "tsp8_test.pkl"
    test_file.write_bytes(pickle.dumps(np.random.default_rng(0).random((4, 8, 2)).tolist()))
    datasets = datasets_of(tsp_config(tmp_path, test_file=str(test_file), test_size=None, reference="none"))
    for context in ("test", "test/scaled"):
        assert mlflow.data.get_source(datasets[context]).uri == str(test_file)
    assert datasets["validation"].to_dict()["source_type"] == "code"


def logged_inputs(client: MlflowClient, run_id: str) -> dict[str, tuple[str, str]]:
    """context -> (name, digest) of the run's dataset inputs, failing on a context held twice."""
    inputs = client.get_run(run_id).inputs.dataset_inputs
    contexts = [tag.value for given in inputs for tag in given.tags if tag.key == "mlflow.data.context"]
    assert len(contexts) == len(set(contexts)) == len(inputs), contexts
    return {
        tag.value: (given.dataset.name, given.dataset.digest)
        for given in inputs
        for tag in given.tags
        if tag.key == "mlflow.data.context"
    }


def test_a_runs_datasets_are_logged_once_whatever_attempt_logs_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("datasets")).info.run_id
    first = datasets_of(shapes_config())
    with EpochLogger(uri, run_id) as attempt:
        attempt.log_datasets_once(first)
    expected = {context: (dataset.name, dataset.digest) for context, dataset in first.items()}
    assert logged_inputs(client, run_id) == expected
    # What a reader of the run gets back, through MLflow's dataset API.
    training = next(i for i in client.get_run(run_id).inputs.dataset_inputs if i.dataset.name == "shapes-train")
    assert mlflow.data.get_source(training).to_dict()["tags"]["split"] == "train"

    # A restarted attempt logs them again (here even other data): the run keeps its first inputs, none twice.
    with EpochLogger(uri, run_id) as restarted:
        restarted.log_datasets_once(datasets_of(shapes_config(seed=1)))
    assert logged_inputs(client, run_id) == expected


def log_at_once(uri: str, run_ids: list[str], datasets: dict) -> list[Exception]:
    """Each run's rank 0 logs `datasets` at the same moment (a barrier); the errors their loggers raise."""
    barrier, failures = threading.Barrier(len(run_ids)), []

    def log(run_id: str) -> None:
        logger = EpochLogger(uri, run_id)
        barrier.wait()
        logger.log_datasets_once(datasets)
        try:
            logger.close()
        except Exception as error:  # noqa: BLE001  (collected: the test's assertion names it)
            failures.append(error)

    threads = [threading.Thread(target=log, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_concurrent_runs_logging_the_same_new_datasets_all_get_them(tmp_path):
    # A sweep's trials of one dataset log it at once. MLflow creates a dataset by a lookup, then an insert, so
    # the runs race; every run must still get its inputs, none fail. Rounds of 4 at a barrier hit the race most times.
    datasets = datasets_of(shapes_config())
    expected = {context: (dataset.name, dataset.digest) for context, dataset in datasets.items()}
    for round_ in range(4):
        uri = f"sqlite:///{tmp_path / f'round{round_}.db'}"
        client = MlflowClient(uri)
        experiment = client.create_experiment("datasets")
        run_ids = [client.create_run(experiment).info.run_id for _ in range(4)]
        assert log_at_once(uri, run_ids, datasets) == []
        assert all(logged_inputs(client, run_id) == expected for run_id in run_ids)
