"""The data a run trains and is scored on, as MLflow dataset inputs: the runs table's Dataset column.

One input per context: `training`, `validation`, `test`, and `test/<protocol>` for each copy of the
test set the final metrics score apart (`test_acc/so3` is scored on the input of context `test/so3`,
`test_gap/rotated` on `test/rotated`). Each is named `<dataset>-<split>` and carries
- a digest of its arrays (points and labels; cities and reference lengths) combined from the
  representation cache's `fingerprint`: the same data has the same digest in every run;
- its source: the file or URI the config names, else a `code` source naming the generator, its
  arguments, the seed and the split (and the rotation it is drawn with);
- its schema and shape (mlflow.data's NumpyDataset): MLflow stores no copy of the arrays.
TSP's training instances, drawn afresh at every step, have no arrays: their input is a MetaDataset of
their generator, whose digest MLflow computes from that description.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import mlflow.data
import numpy as np
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag, Run
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from geosweep.config import RunConfig
from geosweep.data import PointCloudSplits, rotate_evaluation_splits
from geosweep.data.cache import fingerprint
from geosweep.data.tsp import TSPData, transformed_variants
from geosweep.registry import DATASETS
from geosweep.tasks.evaluation import robustness_sets

DIGEST_LENGTH = 10  # hex digits: the length MLflow recommends (its stores keep up to 36)


def run_datasets(config: RunConfig, data: PointCloudSplits | TSPData) -> dict[str, Dataset]:
    """The run's inputs by context, for `data` as the config's dataset entry built it."""
    if isinstance(data, TSPData):
        return tour_datasets(config, data)
    return cloud_datasets(config, data)


def cloud_datasets(config: RunConfig, data: PointCloudSplits) -> dict[str, Dataset]:
    """The canonical training clouds, the once-rotated val and test clouds, the robustness table's test copies."""
    spec = config.dataset
    name = spec.name
    per_epoch = {"drawn": "every epoch", "augmentation": spec.augmentation.model_dump(exclude_none=True)}
    fixed = rotate_evaluation_splits(data, spec.rotation.train, spec.rotation.test, seed=config.seed)
    splits = {
        "training": ("train", data.train, {"rotation": spec.rotation.train, **per_epoch}),
        "validation": ("val", fixed.val, {"rotation": spec.rotation.train}),
        "test": ("test", fixed.test, {"rotation": spec.rotation.test}),
    }
    datasets = {
        context: arrays(f"{name}-{split}", split_source(config, split, **drawn), clouds.points, clouds.labels)
        for context, (split, clouds, drawn) in splits.items()
    }
    for protocol, points in robustness_sets(data.test.points, config.seed):
        test_source = split_source(config, "test", rotation=protocol)
        datasets[f"test/{protocol}"] = arrays(f"{name}-test/{protocol}", test_source, points, data.test.labels)
    return datasets


def tour_datasets(config: RunConfig, data: TSPData) -> dict[str, Dataset]:
    """TSP's generator of training instances, the fixed val and test sets, the test set's transformed copies."""
    name, test_file = config.dataset.name, config.dataset.kwargs.get("test_file")

    def test_source(**details: Any) -> DatasetSource:
        return file_source(test_file) if test_file else split_source(config, "test", **details)

    val, test = data.val, data.test
    datasets = {
        "training": MetaDataset(
            split_source(config, "train", drawn="fresh instances every step"), name=f"{name}-train"
        ),
        "validation": arrays(f"{name}-val", split_source(config, "val"), val.coords, val.ref_lengths),
        "test": arrays(f"{name}-test", test_source(), test.coords, test.ref_lengths),
    }
    for variant, (coords, scale) in transformed_variants(test.coords, seed=config.seed).items():
        references = None if test.ref_lengths is None else test.ref_lengths * scale
        datasets[f"test/{variant}"] = arrays(
            f"{name}-test/{variant}", test_source(transform=variant), coords, references
        )
    return datasets


def split_source(config: RunConfig, split: str, **details: Any) -> DatasetSource:
    """Where `split` comes from: the file the config names (`path`), else its generator; `details`: how it is drawn."""
    spec = config.dataset
    if path := spec.kwargs.get("path"):
        return file_source(path)
    arguments = DATASETS.resolved_kwargs(spec.name, spec.kwargs)
    return CodeDatasetSource(
        {"generator": spec.name, "arguments": arguments, "seed": config.seed, "split": split, **details}
    )


def file_source(path: str) -> DatasetSource:
    """The source of a file or URI as the config gives it (`local`, `s3`, `gs`, ...; `code` for other schemes)."""
    try:
        with warnings.catch_warnings():  # MLflow registers its local source twice, then warns that it matches twice
            warnings.simplefilter("ignore", UserWarning)
            return resolve_dataset_source(path)
    except MlflowException:  # a scheme pyarrow reads and MLflow has no source for (abfs://)
        return CodeDatasetSource({"uri": path})


def arrays(name: str, source: DatasetSource, features: np.ndarray, targets: np.ndarray | None) -> Dataset:
    """A NumpyDataset of the arrays (held, not copied), its digest their fingerprints combined."""
    prints = "".join(fingerprint(array) for array in (features, targets) if array is not None)
    digest = hashlib.sha256(prints.encode()).hexdigest()[:DIGEST_LENGTH]
    return mlflow.data.from_numpy(features, source=source, targets=targets, name=name, digest=digest)


def new_inputs(run: Run, datasets: dict[str, dict[str, str]]) -> list[DatasetInput]:
    """The inputs (context -> `Dataset.to_dict()`) whose context `run` does not hold yet: a run's first ones stay."""
    held = {tag.value for given in run.inputs.dataset_inputs for tag in given.tags if tag.key == MLFLOW_DATASET_CONTEXT}
    return [
        DatasetInput(DatasetEntity(**dataset), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
        for context, dataset in datasets.items()
        if context not in held
    ]
