"""``PoseDataModule``: builds the train/val datasets of a source and their loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from aidpose.data.sources import CocoSource, DataSplits, SynthPoseSource


class PoseDataModule(pl.LightningDataModule):
    """Train/val data for one paradigm.

    Args:
        source: where the data lives (``SynthPoseSource`` generates it in ``prepare_data``).
        train_dataset: partial dataset constructor taking ``(ann_file, image_dir)`` for training
            (augmentation and dropper already bound by the config).
        val_dataset: the same for validation (no augmentation, no dropper).
        batch_size, val_batch_size, num_workers, pin_memory, persistent_workers: loader options.
    """

    def __init__(
        self,
        source: SynthPoseSource | CocoSource,
        train_dataset: Callable[..., Dataset],
        val_dataset: Callable[..., Dataset],
        batch_size: int,
        val_batch_size: int,
        num_workers: int,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.make_train = train_dataset
        self.make_val = val_dataset
        self.loader_kwargs: dict[str, Any] = {
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.splits: DataSplits | None = None
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.splits = self.source.prepare()
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self.make_train(self.splits.train_ann, self.splits.train_images)
        if self.val_dataset is None:
            self.val_dataset = self.make_val(self.splits.val_ann, self.splits.val_images)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset, batch_size=self.batch_size, shuffle=True, drop_last=True, **self.loader_kwargs
        )

    def val_dataloader(self) -> DataLoader:
        # a dataset of whole images of different sizes batches them with its own ``collate`` (a list)
        return DataLoader(
            self.val_dataset,
            batch_size=self.val_batch_size,
            shuffle=False,
            collate_fn=getattr(self.val_dataset, "collate", None),
            **self.loader_kwargs,
        )

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
