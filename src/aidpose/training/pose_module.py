"""``PoseModule``: what the top-down and bottom-up Lightning modules share.

On the device normalisation, the training step around the paradigm's loss (with the NaN/inf guard), the
optimizer with its per-step LR schedule, gathering every rank's validation predictions into COCO results and
metrics, the config check across DDP ranks and the run config and S3 stage stored in checkpoints. A paradigm
adds its loss terms, what a validation step collects and how predictions become COCO results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from aidpose.data.keypoints import get_layout
from aidpose.evaluation import evaluate_results
from aidpose.training.distributed import check_same_config, gather_predictions
from aidpose.training.schedule import Schedule, lr_factor

METRIC_KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis")


class PoseModule(pl.LightningModule, ABC):
    """A pose estimator's Lightning module; subclasses implement the abstract methods.

    Args:
        net: backbone + head.
        loss: the training loss (called by the subclass's :meth:`training_losses`).
        schedule: epochs, milestones, base LR and warm-up (see ``aidpose.training.schedule``).
        optimizer: partial optimizer constructor taking ``(params, lr=...)``.
        layout: keypoint layout name ("coco", "crowdpose").
        codec: the run's codec (targets and decoding).
        mean, std: RGB normalisation on the 0–255 scale, applied on the device.
        test: validation/test options; ``dataset`` ("coco" or "crowdpose" metrics).
        channels_last: run the network in channels-last memory format (faster on CPUs and tensor cores).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        schedule: Schedule,
        optimizer: Callable[..., torch.optim.Optimizer],
        layout: str,
        codec: Any,
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

    # ---- the paradigm's part ---------------------------------------------------------------
    @abstractmethod
    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The training loss of a batch under ``loss``; other entries are logged per epoch as ``train/<key>``."""

    @abstractmethod
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Predict a validation batch and append its rows (with a unique ``index``) to ``self._val_outputs``."""

    @abstractmethod
    def coco_results(self, predictions: dict[str, np.ndarray]) -> list[dict]:
        """COCO keypoint results from the gathered prediction rows."""

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> Any:
        """uint8 ``(N, 3, H, W)`` RGB images → the network's output."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # ---- training --------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.training_losses(batch)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}): stopping before it reaches the weights. last.ckpt holds the last finished "
                "epoch; lower schedule.lr or check the data of this batch."
            )
        size = len(batch["image"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        for key, value in terms.items():
            if key != "loss":
                self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=size)
        return loss

    # ---- validation and test ---------------------------------------------------------------
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
        self.last_results = self.coco_results(predictions)
        return evaluate_results(ann_file, self.last_results, dataset=self.test_cfg["dataset"])

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.last_metrics = self.compute_metrics(self.trainer.datamodule.val_dataset.ann_file)
        for key, value in self.last_metrics.items():
            self.log(f"test/{key}", value)

    # ---- run state -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        check_same_config(self.run_config)  # every DDP rank composed the same config

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aidpose_config"] = self.run_config
        checkpoint["aidpose_stage"] = self.stage

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
