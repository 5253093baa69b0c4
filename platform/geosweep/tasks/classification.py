"""Point-cloud classification: cached frames (or points) and labels in, cross-entropy, sharded accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import torch
from pydantic import Field
from torch.nn import functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from geosweep import random_streams
from geosweep.data import PointCloudSplits, rotate_evaluation_splits
from geosweep.data.augmentation import augment
from geosweep.model import InvariantModel, build_model
from geosweep.registry import DATASETS, TASKS
from geosweep.tasks.base import Batch
from geosweep.tasks.evaluation import accuracies, ambiguity_fractions, robustness_and_certificate
from geosweep.tasks.inputs import prepare_inputs

if TYPE_CHECKING:
    from geosweep.config import RunConfig


@TASKS.register("classification", kind="classification")
class Classification:
    """Cross-entropy classification scored by accuracy.

    A deterministic representation's frames are computed once (and cached) and fed to
    the model's frames entry; stochastic representations run in the model every step, and
    so does any representation whose training clouds' per-epoch draws (rotation protocol,
    augmentation) can change its output (tasks/inputs.py).

    Args:
        label_smoothing: cross-entropy label smoothing in [0, 1).
    """

    grad_clip = None
    epoch_metrics = ("val_acc", "val_mean_class_acc", "test_acc", "test_mean_class_acc")  # evaluate()'s keys

    def __init__(self, label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy in float32; `label_smoothing` overrides the configured value (an amortised hyperparameter).

        Returns:
            The loss, and no further per-step metrics.
        """
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing), {}

    @staticmethod
    def num_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """How many argmax predictions equal the labels."""
        return (logits.argmax(dim=-1) == labels).sum()

    # --- training recipe (see tasks/base.py's Task)

    def setup(self, config: RunConfig, rank: int, world_size: int, device: torch.device) -> InvariantModel:
        """Every rank generates the same splits (the canonical pose is kept for the robustness table)."""
        self.config, self.rank, self.world_size, self.device = config, rank, world_size, device
        self.canonical = DATASETS.build(config.dataset.name, config.dataset.kwargs, seed=config.seed)
        # A file dataset's size is known only now. Each rank drops its last partial batch: a batch larger than
        # its shard would leave no training step at all, and the epoch's means would divide by zero.
        train_size = len(self.canonical.train.labels)
        if config.batch_size * world_size > train_size:
            raise ValueError(
                f"batch_size: {config.batch_size} per worker x {world_size} workers is more than the {train_size} "
                f"training clouds of dataset {config.dataset.name!r}; expected at most {train_size // world_size}"
            )
        rotation = config.dataset.rotation
        data = rotate_evaluation_splits(self.canonical, rotation.train, rotation.test, seed=config.seed)
        self.model = build_model(config, dim=data.dim, out_dim=data.num_classes)
        self.inputs = prepare_inputs(config, data, self.model.representation, rank)
        train_set = TensorDataset(self.inputs.train, torch.from_numpy(data.train.labels))
        self.sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed, drop_last=True)
        self.loader = DataLoader(train_set, batch_size=config.batch_size, sampler=self.sampler, drop_last=True)
        self.val_labels, self.test_labels = torch.from_numpy(data.val.labels), torch.from_numpy(data.test.labels)
        return self.model

    @property
    def data(self) -> PointCloudSplits:
        """The dataset as built, in canonical pose (val and test are rotated once from it, train every epoch)."""
        return self.canonical

    def start_metrics(self) -> dict[str, float]:
        """The frame cache's hits and seconds, and how ambiguous a single canonical frame is on this data."""
        splits = (self.canonical.train, self.canonical.val, self.canonical.test)
        return self.inputs.metrics | ambiguity_fractions([split.points for split in splits], self.model.representation)

    def batches(self, epoch: int) -> Iterator[Batch]:
        """This rank's shard of the train split, reshuffled per epoch: cached frames, or points drawn afresh.

        Points get this epoch's rotation and augmentation, from this rank's stream for the epoch; cached frames
        are what every such draw would give (tasks/inputs.py).
        """
        self.sampler.set_epoch(epoch)
        rng = random_streams.generator("augment.train", self.config.seed, self.rank, epoch)
        dataset = self.config.dataset
        for x, labels in self.loader:
            if self.inputs.train_name == "points":
                x = torch.from_numpy(augment(x.numpy(), dataset.rotation.train, dataset.augmentation, rng))
            yield Batch({self.inputs.train_name: x.to(self.device)}, labels.to(self.device))

    def end_epoch(self) -> dict[str, float]:
        """Nothing to update between epochs."""
        return {}

    def evaluate(self) -> dict[str, float]:
        """Overall and mean per-class accuracy on val and test, each rank a shard (amortised: the first grid value)."""
        self._set_amortised(0)
        return {f"{split}_{name}": v for split in ("val", "test") for name, v in self._accuracies(split).items()}

    def final_metrics(self) -> dict[str, float]:
        """Rank 0 after training: rotation-robustness table, invariance certificate, amortised grid."""
        test, certify, model = self.canonical.test, self.config.certify, self.model
        final = robustness_and_certificate(
            model,
            self.canonical.num_classes,
            test.points,
            test.labels,
            model.invariances,
            samples=certify.samples,
            max_clouds=certify.max_clouds,
            seed=self.config.seed,
            device=self.device,
        )
        amortised = model.amortised
        if amortised:  # one trial covers a slice of the sweep: every grid value, scored
            for index, value in enumerate(amortised.grid):
                self._set_amortised(index)
                for split in ("val", "test"):
                    for name, score in self._accuracies(split, sharded=False).items():
                        final[f"amortised/{amortised.name}:{value:g}/{split}_{name}"] = score  # MLflow allows no "="
            self._set_amortised(0)
        return final

    def state_dict(self) -> dict[str, Any]:
        """No state beyond model and optimizer."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def example_inputs(self, count: int) -> dict[str, torch.Tensor]:
        """The first `count` test clouds, in canonical pose, as points (the model's public input)."""
        return {"points": torch.from_numpy(self.canonical.test.points[:count])}

    def _accuracies(self, split: str, sharded: bool = True) -> dict[str, float]:
        """`acc` and `mean_class_acc` on `split` ("val" or "test"): sharded over ranks (a collective), or rank 0's."""
        inputs, labels = getattr(self.inputs, split), getattr(self, f"{split}_labels")
        rank, world_size = (self.rank, self.world_size) if sharded else (0, 1)
        num_classes, name = self.canonical.num_classes, self.inputs.eval_name
        return accuracies(self.model, inputs, labels, num_classes, rank, world_size, self.device, name)

    def _set_amortised(self, index: int) -> None:
        if self.model.amortised:
            self.model.set_hyperparams({self.model.amortised.name: self.model.amortised.grid[index]})
