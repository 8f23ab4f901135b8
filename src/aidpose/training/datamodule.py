"""``PoseDataModule``: builds the train/val datasets of a source and their loaders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from aidpose.data.mixed import MixedDataset
from aidpose.data.pipeline import SampleKey
from aidpose.data.sources import CocoSource, DataSplits, MixedCocoSource, SynthPoseSource


class EpochSampler(DistributedSampler):
    """The training order: a shuffle that is a function of ``(seed, epoch)``, split over the ranks.

    A ``DistributedSampler`` (Lightning keeps it and calls ``set_epoch`` before every epoch, with 1 process
    or many) that yields :class:`SampleKey` ``(index, seed, epoch)``: the dataset draws each item's
    augmentation and dropper from that key, so a run resumed at an epoch boundary repeats an uninterrupted
    one exactly, and nothing random lives in the main process between epochs.
    """

    def __iter__(self) -> Iterator[SampleKey]:  # type: ignore[override]
        for index in super().__iter__():
            yield SampleKey(index, self.seed, self.epoch)


class PoseDataModule(pl.LightningDataModule):
    """Train/val data for one paradigm.

    Args:
        source: where the data lives (``SynthPoseSource`` generates it in ``prepare_data``; a
            ``MixedCocoSource`` adds training sets, mixed by :meth:`build_train_dataset`).
        train_dataset: partial dataset constructor taking ``(ann_file, image_dir)`` for training
            (augmentation and dropper already bound by the config).
        val_dataset: the same for validation (no augmentation, no dropper).
        batch_size, val_batch_size, num_workers, pin_memory, persistent_workers: loader options.
        seed: the run's seed (training order and per-item random draws, see :class:`EpochSampler`).
    """

    def __init__(
        self,
        source: SynthPoseSource | CocoSource | MixedCocoSource,
        train_dataset: Callable[..., Dataset],
        val_dataset: Callable[..., Dataset],
        batch_size: int,
        val_batch_size: int,
        num_workers: int,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
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
        self.seed = seed
        self.val_batch_size = val_batch_size
        self.splits: DataSplits | None = None
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.splits = self.source.prepare()
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self.build_train_dataset()
        if self.val_dataset is None:  # testing a source with a test file (COCO test-dev) evaluates that file
            test = stage == "test" and self.splits.test_ann is not None
            splits = self.splits
            ann, images = (
                (splits.test_ann, splits.test_images) if test else (splits.val_ann, splits.val_images)
            )
            self.val_dataset = self.make_val(ann, images)

    def build_train_dataset(self, **options: Any) -> Dataset:
        """The training set of the splits (``options``: dataset arguments to replace, e.g. ``dropper``): the train
        split, or a :class:`MixedDataset` of it and the mix's training sets (``splits.extra_train``)."""
        splits = self.splits
        train = self.make_train(splits.train_ann, splits.train_images, **options)
        if not splits.extra_train:
            return train
        extra = [self.make_train(part.ann, part.images, **options) for part in splits.extra_train]
        return MixedDataset(
            [train, *extra],
            [splits.train_ratio, *(part.ratio for part in splits.extra_train)],
            ["train", *(part.name for part in splits.extra_train)],
        )

    def unreadable_images_skipped(self) -> dict[str, int]:
        """Images skipped so far because they could not be read (``loader.skip_unreadable_images``), per split
        (this process's loaders and their workers)."""
        datasets = {"train": self.train_dataset, "val": self.val_dataset}
        return {split: d.num_unreadable_skipped for split, d in datasets.items() if d is not None}

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = EpochSampler(
            self.train_dataset,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            shuffle=True,
            seed=self.seed,
        )
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            collate_fn=getattr(self.train_dataset, "collate", None),
            **self.loader_kwargs,
        )

    def val_dataloader(self) -> DataLoader:
        # a dataset batches its items with its own ``collate`` (the sample pipeline's: the images' channels-last
        # view; whole images of different sizes: a list); a dataset without one, with the default collate
        return DataLoader(
            self.val_dataset,
            batch_size=self.val_batch_size,
            shuffle=False,
            collate_fn=getattr(self.val_dataset, "collate", None),
            **self.loader_kwargs,
        )

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
