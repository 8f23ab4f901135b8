"""``TopDownPoseModule``: the thin Lightning wrapper around a top-down heatmap estimator.

Training: normalise the uint8 batch on the device, predict heatmaps, MSE loss with target weights.
Validation: flip test, UDP decode to image coordinates, gather every rank's predictions, then
COCO results → metrics. All the math lives in ``aidpose.codecs`` and ``aidpose.evaluation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from aidpose.codecs.udp_heatmap import UDPHeatmapCodec
from aidpose.data.keypoints import get_layout
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.results import topdown_results
from aidpose.training.distributed import check_same_config, gather_predictions
from aidpose.training.schedule import Schedule, lr_factor

METRIC_KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis")


class TopDownPoseModule(pl.LightningModule):
    """Top-down pose estimation (SimpleBaseline / HRNet style) on UDP heatmaps.

    Args:
        net: backbone + head producing ``(N, K, h, w)`` heatmaps.
        loss: heatmap loss ``(pred, target, target_weight) -> scalar``.
        schedule: epochs, milestones, base LR and warm-up (see ``aidpose.training.schedule``).
        optimizer: partial optimizer constructor taking ``(params, lr=...)``.
        layout: keypoint layout name ("coco", "crowdpose").
        codec: the run's heatmap codec (input/heatmap size, decoding with its DARK blur kernel).
        mean, std: RGB normalisation on the 0–255 scale, applied on the device.
        test: validation/test options: ``flip``, ``nms`` ("oks", "soft_oks", "none"),
            ``nms_thr``, ``kpt_score_thr`` (rescoring threshold), ``dataset`` ("coco" or "crowdpose" metrics).
        channels_last: run the network in channels-last memory format (faster on CPUs and tensor cores).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        schedule: Schedule,
        optimizer: Callable[..., torch.optim.Optimizer],
        layout: str,
        codec: UDPHeatmapCodec,
        mean: Sequence[float],
        std: Sequence[float],
        test: dict[str, Any],
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.schedule = schedule
        self.optimizer_factory = optimizer
        self.layout = get_layout(layout)
        self.codec = codec
        self.test_cfg = dict(test)
        self.channels_last = channels_last
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("flip_index", torch.as_tensor(self.layout.flip_index), persistent=False)
        self._val_outputs: list[dict[str, np.ndarray]] = []
        self.last_metrics: dict[str, float] = {}
        self.last_metrics_epoch = -1
        self.last_results: list[dict] = []
        self.run_config: dict[str, Any] | None = None  # the resolved run config, stored in checkpoints
        self.stage: str | None = None  # the stage of a multi-stage schedule (S3), stored in checkpoints

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, 3, H, W)`` RGB images → heatmaps ``(N, K, h, w)``."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def predict_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps with the flip test (average with the flipped image's heatmaps, UDP: no shift)."""
        heatmaps = self(images)
        if self.test_cfg["flip"]:
            flipped = self(images.flip(-1))
            heatmaps = 0.5 * (heatmaps + self.codec.flip_back(flipped, self.flip_index))
        return heatmaps

    # ---- training --------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        heatmaps = self(batch["image"])
        loss = self.loss(heatmaps, batch["target"], batch["target_weight"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}): stopping before it reaches the weights. last.ckpt holds the last finished "
                "epoch; lower schedule.lr or check the data of this batch."
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(heatmaps))
        return loss

    # ---- validation ------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        heatmaps = self.predict_heatmaps(batch["image"])
        loss = self.loss(heatmaps, batch["target"], batch["target_weight"])
        self.log("val/loss", loss, sync_dist=True, batch_size=len(heatmaps))
        keypoints = self.codec.decode(heatmaps.float().cpu().numpy(), batch["inv_affine"].cpu().numpy())
        self._val_outputs.append(
            {
                "index": batch["index"].cpu().numpy(),
                "image_id": batch["image_id"].cpu().numpy(),
                "keypoints": keypoints,
                "bbox_score": batch["bbox_score"].cpu().numpy(),
                "area": batch["area"].cpu().numpy(),
            }
        )

    def on_validation_epoch_end(self) -> None:
        metrics = self.compute_metrics(self.trainer.datamodule.val_dataset.ann_file)
        self.last_metrics = metrics
        self.last_metrics_epoch = self.current_epoch
        for key in METRIC_KEYS:
            if key in metrics:
                self.log(f"val/{key}", metrics[key], prog_bar=key == "AP")

    def compute_metrics(self, ann_file: str | Path) -> dict[str, float]:
        """Gather this epoch's predictions from every rank and score them against ``ann_file``."""
        predictions = gather_predictions(self._val_outputs)
        self._val_outputs = []
        self.last_results = topdown_results(
            predictions,
            sigmas=self.layout.sigmas,
            nms=self.test_cfg["nms"],
            nms_thr=self.test_cfg["nms_thr"],
            soft_nms_thr=self.test_cfg["soft_nms_thr"],
            kpt_score_thr=self.test_cfg["kpt_score_thr"],
        )
        return evaluate_results(ann_file, self.last_results, dataset=self.test_cfg["dataset"])

    test_step = validation_step

    def on_test_epoch_end(self) -> None:
        self.last_metrics = self.compute_metrics(self.trainer.datamodule.val_dataset.ann_file)
        for key, value in self.last_metrics.items():
            self.log(f"test/{key}", value)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aidpose_config"] = self.run_config
        checkpoint["aidpose_stage"] = self.stage

    def setup(self, stage: str) -> None:
        check_same_config(self.run_config)  # every DDP rank composed the same config

    # ---- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters(), lr=self.schedule.lr)
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // max(1, self.trainer.max_epochs))
        milestones = self.schedule.scaled_milestones
        s = self.schedule

        def factor(step: int) -> float:
            return lr_factor(step, steps_per_epoch, milestones, s.gamma, s.warmup_steps, s.warmup_ratio)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
