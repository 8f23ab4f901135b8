"""``MixedDataset``: training sets of one layout sampled together with a ratio each (e.g. COCO + AI Challenger).

mmpose's ``CombinedDataset(sample_ratio_factor=...)``: set ``s`` of ``n_s`` items contributes ``round(n_s · r_s)``
items to an epoch; mixed position ``j`` of set ``s``'s block draws one item of its stratum, uniformly (a ratio
below 1 subsamples the set, above 1 repeats it, 1 takes each item once). The draw and the item's augmentation come
from the position's :class:`~aidpose.data.pipeline.SampleKey`, so a mix is reproducible as a single dataset is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from aidpose.data.pipeline import SampleDataset, SampleKey, WarpedSample, as_sample_key, collate


def mixed_lengths(sizes: Sequence[int], ratios: Sequence[float]) -> list[int]:
    """Items each set contributes to an epoch: ``round(size · ratio)`` (mmpose ``CombinedDataset``)."""
    if len(sizes) != len(ratios) or any(r < 0 for r in ratios):
        raise ValueError(
            f"a mix needs one non-negative ratio per set: {len(sizes)} sets, ratios {list(ratios)}"
        )
    lengths = [round(n * r) for n, r in zip(sizes, ratios, strict=True)]
    if not sum(lengths):
        raise ValueError(f"the mix of sets of {list(sizes)} items with ratios {list(ratios)} samples nothing")
    return lengths


def locate(position: int, sizes: Sequence[int], lengths: Sequence[int], u: float) -> tuple[int, int]:
    """``(set, item)`` of mixed ``position``: the set whose block of ``lengths`` holds it, and in that set, for
    the ``j``-th position of its block, item ``floor((j + u) · size / length)`` with ``u`` in [0, 1): one item of
    the ``j``-th of ``length`` equal strata, uniformly (mmpose ``CombinedDataset._get_subset_index``)."""
    if not 0 <= position < sum(lengths):
        raise IndexError(f"position {position} outside a mix of {sum(lengths)} items")
    ends = np.cumsum(lengths)
    part = int(np.searchsorted(ends, position, side="right"))
    j = position - (int(ends[part]) - lengths[part])
    return part, min(int((j + u) * sizes[part] / lengths[part]), sizes[part] - 1)


class MixedDataset(Dataset):
    """Training sets (each a :class:`SampleDataset` of the run's paradigm and layout) sampled with ``ratios``.

    Items are the sets' items; ``summary`` has each set's counts under ``<name>/``. The sub-item of a mixed
    position is read with a key of its own (seeded by the run's seed, the set and the position), so two
    positions repeating one item draw different augmentations.
    """

    def __init__(
        self, datasets: Sequence[SampleDataset], ratios: Sequence[float], names: Sequence[str]
    ) -> None:
        self.datasets = list(datasets)
        self.names = list(names)
        self.sizes = [len(d) for d in self.datasets]
        self.lengths = mixed_lengths(self.sizes, ratios)
        self.summary = {
            f"{name}/{key}": value
            for name, dataset, length in zip(self.names, self.datasets, self.lengths, strict=True)
            for key, value in {**dataset.summary, "sampled_per_epoch": length}.items()
        }

    def __len__(self) -> int:
        return sum(self.lengths)

    @property
    def num_unreadable_skipped(self) -> int:
        return sum(d.num_unreadable_skipped for d in self.datasets)

    def part_key(self, key: int | SampleKey) -> tuple[SampleDataset, SampleKey]:
        """The set and the key of its item that mixed position ``key`` reads."""
        key = as_sample_key(key)
        part, item = locate(key.index, self.sizes, self.lengths, float(key.rng().random()))
        seed = int(np.random.SeedSequence([key.seed, part, key.index]).generate_state(1)[0])
        return self.datasets[part], SampleKey(item, seed, key.epoch)

    def sample(self, key: int | SampleKey) -> WarpedSample:
        dataset, part_key = self.part_key(key)
        return dataset.sample(part_key)

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        dataset, part_key = self.part_key(key)
        return dataset[part_key]

    collate = staticmethod(collate)
