"""Test-time occlusion: AP versus occluded area, with the AID droppers applied to the val crops.

:class:`OccludedDataset` wraps a val :class:`~aidpose.data.topdown.TopDownDataset` and applies a dropper to
every crop with a generator seeded by ``(seed, dataset index)``, so a crop is occluded the same way on
every run and on every DDP rank. It measures the dropped pixels of each crop; :class:`OcclusionMeter`
gathers those measurements from every rank during ``trainer.test``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import Dataset

from aidpose.data.topdown import KeypointDropper, TopDownDataset
from aidpose.postprocess import gather_predictions
from aidpose.transforms.affine import apply_affine, invert_affine

LEVEL_PARAMS = {
    "aidpose.aid.Cutout": "size_range",
    "aidpose.aid.RandomErasing": "area_range",
    "aidpose.aid.HideAndSeek": "hide_prob",
    "aidpose.aid.GridMask": "ratio",
}
"""The dropper argument ``test.occlusion_levels`` sets when ``test.occlusion_param`` is null."""


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
    """A val ``TopDownDataset`` whose crops are occluded by ``dropper`` (seeded per crop).

    Items are the base dataset's, with the occluded ``image``, ``dropped`` (keypoints whose pixel was
    dropped) and ``occluded_frac``: the measured fraction of the crop's pixels that were dropped.
    """

    def __init__(self, base: TopDownDataset, dropper: KeypointDropper, seed: int) -> None:
        if not callable(getattr(dropper, "drop", None)):
            raise TypeError(f"dropper {type(dropper).__name__} has no drop(image, keypoints, rng) method")
        self.base = base
        self.dropper = dropper
        self.seed = int(seed)

    @property
    def ann_file(self) -> str:
        return self.base.ann_file

    @property
    def summary(self) -> dict[str, int]:
        return self.base.summary

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        index = int(item["index"])  # the instance actually read (unreadable images are replaced)
        image = np.ascontiguousarray(item["image"].transpose(1, 2, 0))
        keypoints = self.base.records.keypoints[index]
        crop_xy = apply_affine(keypoints[:, :2], invert_affine(item["inv_affine"]))
        occluded, dropped, mask = occlude(image, crop_xy, keypoints[:, 2], self.dropper, self.seed, index)
        item["image"] = np.ascontiguousarray(occluded.transpose(2, 0, 1))
        item["dropped"] = dropped
        item["occluded_frac"] = np.float32(mask.mean())
        return item


class OcclusionMeter(pl.Callback):
    """Collects the measured occlusion of every test crop, gathered from all ranks without duplicates.

    After ``trainer.test`` on an :class:`OccludedDataset`, :attr:`summary` holds ``occluded_area`` (mean
    fraction of crop pixels dropped), ``dropped_kpt_frac`` (fraction of visible keypoints whose pixel was
    dropped) and ``instances``.
    """

    def __init__(self) -> None:
        self._outputs: list[dict[str, np.ndarray]] = []
        self.summary: dict[str, float | int] = {}

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if "occluded_frac" in batch:
            self._outputs.append(
                {k: batch[k].cpu().numpy() for k in ("index", "occluded_frac", "dropped", "visible")}
            )

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        gathered = gather_predictions(self._outputs)  # collective: every rank calls it
        self._outputs = []
        if not gathered:
            self.summary = {}
            return
        visible = gathered["visible"]
        self.summary = {
            "occluded_area": float(gathered["occluded_frac"].astype(np.float64).mean()),
            "dropped_kpt_frac": float((gathered["dropped"] & visible).sum() / max(int(visible.sum()), 1)),
            "instances": len(gathered["index"]),
        }


def level_config(
    dropper_cfg: dict[str, Any], level: float | None, param: str | None = None
) -> dict[str, Any]:
    """The dropper config at one occlusion level, applied to every crop (``p=1``).

    ``param`` (default: :data:`LEVEL_PARAMS` of the dropper's ``_target_``) is set to ``level``; a
    ``[lo, hi]`` range argument becomes ``[level, level]``. ``level=None`` keeps the config as is.
    """
    cfg = {**dropper_cfg, "p": 1.0}
    if level is None:
        return cfg
    target = cfg.get("_target_")
    param = param or LEVEL_PARAMS.get(target)
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
