"""Test-time occlusion: AP versus occluded area, with the AID droppers applied to the val crops.

:class:`OccludedDataset` wraps a val :class:`~aidpose.data.topdown.TopDownDataset` and applies a dropper to
every crop with a generator seeded by ``(seed, dataset index)``, so a crop is occluded the same way on
every run and on every DDP rank. It measures the dropped pixels of each crop; the
:class:`~aidpose.training.callbacks.OcclusionMeter` callback gathers those measurements during ``trainer.test``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from aidpose.aid.transforms import declared_strength
from aidpose.data.pipeline import KeypointDropper, SampleDataset, collate


def crop_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of crop ``index``: a function of ``(seed, index)`` only."""
    return np.random.default_rng([seed, index])


def occlude(
    image: np.ndarray,
    keypoints: np.ndarray,
    visibility: np.ndarray,
    dropper: KeypointDropper,
    seed: int,
    index: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``dropper`` to a uint8 HWC crop; return (occluded crop, dropped keypoints (K,), dropped pixels (H, W)).

    The dropped pixels are measured: the dropper also runs, with an identically seeded generator, on the
    complement ``255 - image``, which differs from the crop in every channel of every pixel. A pixel is
    dropped where the two outputs agree, i.e. where the fill replaced both (exact for fills that do not
    depend on the image content: constants, the mean, noise from the generator).
    """
    occluded, dropped = dropper.drop(image.copy(), keypoints, crop_rng(seed, index), visibility=visibility)
    complement, _ = dropper.drop(255 - image, keypoints, crop_rng(seed, index), visibility=visibility)
    agree = occluded == complement
    mask = agree.all(axis=-1) if agree.ndim == 3 else agree
    return occluded, np.asarray(dropped, dtype=bool), mask


class OccludedDataset(Dataset):
    """A val dataset of the sample pipeline whose samples are occluded by ``dropper`` (seeded per sample).

    Items are the base dataset's, from the occluded image (the targets are unchanged), with the dropper's
    statistics of the occlusion (``dropped_count``) and ``occluded_frac``: the measured fraction of the input's
    pixels that were dropped.
    """

    def __init__(self, base: Dataset, dropper: KeypointDropper, seed: int) -> None:
        if not isinstance(base, SampleDataset):
            raise TypeError(
                f"test.occlusion occludes the samples of the sample pipeline (person crops); the validation set "
                f"{type(base).__name__} holds whole images at the test scales: evaluate it without test.occlusion"
            )
        if not callable(getattr(dropper, "drop", None)):
            raise TypeError(f"dropper {type(dropper).__name__} has no drop(image, keypoints, rng) method")
        self.base = base
        self.dropper = dropper
        self.seed = int(seed)

    @property
    def ann_file(self) -> str:
        return self.base.ann_file

    @property
    def coco(self) -> Any:
        return self.base.coco

    @property
    def summary(self) -> dict[str, int]:
        return self.base.summary

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # sample.index: the instance actually read (an unreadable image is replaced by the next readable one)
        sample = self.base.sample(index)
        keypoints, visibility = sample.keypoints.reshape(-1, 2), sample.visibility.reshape(-1)
        occluded, dropped, mask = occlude(
            sample.image, keypoints, visibility, self.dropper, self.seed, sample.index
        )
        item = self.base.item(sample._replace(image=occluded, dropped=dropped.reshape(sample.dropped.shape)))
        item["occluded_frac"] = np.float32(mask.mean())
        return item

    collate = staticmethod(collate)


def level_config(
    dropper_cfg: dict[str, Any], level: float | None, param: str | None = None
) -> dict[str, Any]:
    """The dropper config at one occlusion level, applied to every crop (``p=1``).

    ``param`` (default: the ``strength`` argument the dropper class declares) is set to ``level``; a
    ``[lo, hi]`` range argument becomes ``[level, level]``. ``level=None`` keeps the config as is.
    """
    cfg = {**dropper_cfg, "p": 1.0}
    if level is None:
        return cfg
    target = cfg.get("_target_")
    if param is None:
        strength = declared_strength(str(target))
        param = strength.param if strength else None
    if param is None:
        raise ValueError(
            f"test.occlusion_levels: no default argument to vary for dropper {target}; set test.occlusion_param"
        )
    if param not in cfg:
        raise ValueError(
            f"test.occlusion_param={param!r} is not an argument of the dropper config ({target}: "
            f"{sorted(k for k in cfg if not k.startswith('_'))})"
        )
    current = cfg[param]
    cfg[param] = [level, level] if isinstance(current, (list, tuple)) and len(current) == 2 else level
    return cfg
