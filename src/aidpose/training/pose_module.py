"""``PoseModule``: the contract of every paradigm's Lightning module and what they share.

Shared: on the device normalisation, the training step (the paradigm's loss on the network's outputs and the
batch's targets, with the NaN/inf guard), the optimizer with its per-step LR schedule, validation as prediction
rows of every batch gathered from every rank into COCO results and metrics, the config check across DDP ranks
and the run config and S3 stage stored in checkpoints. A paradigm says how a batch of its validation set is
predicted (:meth:`~PoseModule.predict_step`), how whole images are (:meth:`~PoseModule.predict_people`, the
``aidpose.inference.PosePredictor`` protocol) and how prediction rows become COCO results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from aidpose.codecs.base import KeypointCodec, Prediction
from aidpose.data.coco import has_annotations
from aidpose.data.keypoints import get_layout
from aidpose.evaluation import evaluate_results
from aidpose.training.distributed import check_same_config, gather_predictions
from aidpose.training.schedule import Schedule, lr_factor

METRIC_KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis")


class PoseModule(pl.LightningModule, ABC):
    """A pose estimator's Lightning module; subclasses implement the abstract methods.

    Args:
        net: backbone + head.
        loss: the training loss: ``loss(outputs, batch)`` → its terms, ``loss`` and any others to log.
        schedule: epochs, milestones, base LR and warm-up (see ``aidpose.training.schedule``).
        optimizer: partial optimizer constructor taking ``(params, lr=...)``.
        layout: keypoint layout name ("coco", "crowdpose").
        codec: the run's codec (targets, flip test, decoding; ``aidpose.codecs.base.KeypointCodec``).
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
        codec: KeypointCodec,
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

    needs_boxes: ClassVar[bool]
    """Whether :meth:`predict_people` needs person boxes (top-down) or finds the people itself (bottom-up)."""

    # ---- the paradigm's part ---------------------------------------------------------------
    @abstractmethod
    def predict_step(self, batch: Any, batch_idx: int = 0) -> dict[str, np.ndarray]:
        """Prediction rows of a batch of the validation set: one row per person, with a unique ``index``,
        ``image_id``, ``keypoints`` (P, K, 3) in image pixels and what :meth:`coco_results` scores them by."""

    @abstractmethod
    def predict_people(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None
    ) -> list[Prediction]:
        """The people of each BGR image (H, W, 3) uint8, in image pixels, decoded as validation decodes.

        ``boxes``: per image (N, 5) person boxes [x, y, w, h, score]; a module that ``needs_boxes`` crops them
        (None: each image is one box), one that does not finds the people itself and takes none."""

    @abstractmethod
    def coco_results(self, predictions: dict[str, np.ndarray]) -> list[dict]:
        """COCO keypoint results from the gathered prediction rows."""

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> Any:
        """uint8 ``(N, 3, H, W)`` RGB images (any strides: the loaders' batches are channels-last views) → the
        head's outputs (a tensor, or a list for a head with several outputs), laid out (``channels_last``) and
        normalised exactly as in training and validation."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"the network takes (N, 3, H, W) RGB images, got shape {tuple(images.shape)}: batch the dataset's "
                "(H, W, 3) items with DataLoader(..., collate_fn=dataset.collate)"
            )
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return self.net((images.contiguous(memory_format=layout).float() - self.mean) / self.std)

    # ---- training --------------------------------------------------------------------------
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The loss terms of a batch: ``loss`` (optimised) and others (logged per epoch as ``train/<key>``)."""
        return self.loss(self(batch["image"]), batch)

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
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._val_outputs.append(self.predict_step(batch, batch_idx))

    def on_validation_epoch_end(self) -> None:
        metrics = self.compute_metrics(self.trainer.datamodule.val_dataset.ann_file)
        self.last_metrics = metrics
        self.last_metrics_epoch = self.current_epoch
        for key in METRIC_KEYS:
            if key in metrics:
                self.log(f"val/{key}", metrics[key], prog_bar=key == "AP")

    def collect_results(self) -> list[dict[str, Any]]:
        """Gather this epoch's predictions from every rank into COCO results (kept in ``last_results``)."""
        predictions = gather_predictions(self._val_outputs)
        self._val_outputs = []
        self.last_results = self.coco_results(predictions)
        return self.last_results

    def compute_metrics(self, ann_file: str | Path) -> dict[str, float]:
        """Gather this epoch's predictions from every rank and score them against ``ann_file``."""
        return evaluate_results(ann_file, self.collect_results(), dataset=self.test_cfg["dataset"])

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        dataset = self.trainer.datamodule.val_dataset
        if not has_annotations(dataset.coco):  # images only (COCO test-dev): results, no metric to compute
            self.collect_results()
            self.last_metrics = {}
            return
        self.last_metrics = self.compute_metrics(dataset.ann_file)
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
