"""Callbacks of the Lightning runs (AID statistics, test-time occlusion) and the config groups' builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from aidpose.aid.stats import DroppedKeypointStats
from aidpose.data.keypoints import get_layout
from aidpose.training.distributed import gather_predictions


def instantiate_group(node: DictConfig | None) -> list[Any]:
    """One object per non-null entry of a config group of objects (``logger``, ``callbacks``); none for null."""
    if not node:
        return []
    return [instantiate(c) for c in node.values() if c is not None]


class AidStatistics(pl.Callback):
    """How much the AID dropper hid: the share of visible keypoints whose pixel it dropped, per epoch.

    Reads the dropper's statistics every training item carries (``visible_count``, ``dropped_count``: per
    joint, ``aidpose.data.pipeline``). Logs ``train/aid_dropped_kpt_frac`` (all ranks' training crops) and appends
    ``{"epoch": E, <joint name>: share, ...}`` to ``dirpath/filename`` (rank 0). A joint never visible in
    the epoch, like an epoch without visible keypoints, counts as share 0.

    Args:
        dirpath: the run folder.
        layout: keypoint layout name (joint names of the file).
        filename: the per-joint history file.
    """

    def __init__(self, dirpath: str, layout: str, filename: str = "aid_dropped_per_joint.json") -> None:
        self.path = Path(dirpath) / filename
        self.layout = get_layout(layout)
        self.stats = DroppedKeypointStats.empty(self.layout.num_keypoints)
        self.last_fraction: float | None = None  # of the last finished epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stats = DroppedKeypointStats.empty(self.layout.num_keypoints)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.stats += DroppedKeypointStats.of_items(
            batch["visible_count"].cpu().numpy(), batch["dropped_count"].cpu().numpy()
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts = torch.tensor(np.stack([self.stats.dropped, self.stats.visible]), device=pl_module.device)
        if trainer.world_size > 1:
            counts = trainer.strategy.reduce(counts, reduce_op="sum")
        dropped, visible = counts.cpu().numpy()
        total = DroppedKeypointStats(visible=visible, dropped=dropped)
        self.last_fraction = float(np.nan_to_num(total.fraction))
        pl_module.log("train/aid_dropped_kpt_frac", self.last_fraction)
        if trainer.is_global_zero:
            per_joint = np.nan_to_num(total.per_joint).tolist()
            history = json.loads(self.path.read_text()) if self.path.is_file() else []
            history.append(
                {
                    "epoch": trainer.current_epoch,
                    **dict(zip(self.layout.keypoint_names, per_joint, strict=True)),
                }
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(history, indent=1))


class OcclusionMeter(pl.Callback):
    """Collects the measured occlusion of every test crop, gathered from all ranks without duplicates.

    After ``trainer.test`` on an :class:`~aidpose.data.occlusion.OccludedDataset`, :attr:`summary` holds ``occluded_area`` (mean
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
                {
                    k: batch[k].cpu().numpy()
                    for k in ("index", "occluded_frac", "visible_count", "dropped_count")
                }
            )

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        gathered = gather_predictions(self._outputs)  # collective: every rank calls it
        self._outputs = []
        if not gathered:
            self.summary = {}
            return
        stats = DroppedKeypointStats.of_items(gathered["visible_count"], gathered["dropped_count"])
        self.summary = {
            "occluded_area": float(gathered["occluded_frac"].astype(np.float64).mean()),
            "dropped_kpt_frac": float(np.nan_to_num(stats.fraction)),
            "instances": len(gathered["index"]),
        }
