"""``BottomUpPoseModule``: the thin Lightning wrapper around a bottom-up (associative-embedding) estimator.

Training: normalise the uint8 batch on the device, predict heatmaps and tags at every output resolution,
masked heatmap MSE + AE push/pull (``BottomUpLoss``). Validation: whole images at the codec's test scales,
flip test, multi-resolution and multi-scale merging, grouping and refinement (all in
``AssociativeEmbeddingCodec``), every rank's people gathered, then COCO results → metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec, BottomUpPrediction
from aidpose.data.bottomup import heatmap_to_image_matrix
from aidpose.data.keypoints import get_layout
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.results import bottomup_results
from aidpose.models.bottomup_losses import BottomUpLoss
from aidpose.training.distributed import gather_predictions
from aidpose.training.schedule import Schedule, lr_factor
from aidpose.training.topdown_module import METRIC_KEYS


class BottomUpPoseModule(pl.LightningModule):
    """Bottom-up pose estimation (HigherHRNet / HRNet with associative embedding) on UDP heatmaps.

    Args:
        net: backbone + bottom-up head producing a list of outputs, lowest resolution first.
        loss: partial ``BottomUpLoss`` taking ``num_keypoints`` (factors and output flags from the config).
        schedule: epochs, milestones, base LR and warm-up (see ``aidpose.training.schedule``).
        optimizer: partial optimizer constructor taking ``(params, lr=...)``.
        layout: keypoint layout name ("coco", "crowdpose").
        codec: the run's bottom-up codec (targets, merging, grouping; its ``scales`` and ``flip_test``).
        mean, std: RGB normalisation on the 0–255 scale, applied on the device.
        test: validation/test options; ``dataset`` ("coco" or "crowdpose" metrics).
        channels_last: run the network in channels-last memory format.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: Callable[..., BottomUpLoss],
        schedule: Schedule,
        optimizer: Callable[..., torch.optim.Optimizer],
        layout: str,
        codec: AssociativeEmbeddingCodec,
        mean: Sequence[float],
        std: Sequence[float],
        test: dict[str, Any],
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.layout = get_layout(layout)
        self.loss = loss(num_keypoints=self.layout.num_keypoints)
        self.schedule = schedule
        self.optimizer_factory = optimizer
        self.codec = codec
        self.test_cfg = dict(test)
        self.channels_last = channels_last
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._val_outputs: list[dict[str, np.ndarray]] = []
        self.last_metrics: dict[str, float] = {}
        self.last_metrics_epoch = -1
        self.last_results: list[dict] = []
        self.run_config: dict[str, Any] | None = None  # the resolved run config, stored in checkpoints

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """uint8 ``(N, 3, H, W)`` RGB images → outputs ``(N, C_i, h_i, w_i)``, lowest resolution first."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return list(self.net(x))

    @torch.no_grad()
    def predict_image(self, images: Sequence[torch.Tensor], matrices: np.ndarray) -> BottomUpPrediction:
        """People of one image from its inputs at the codec's scales ((3, h_s, w_s) uint8 each) and their
        image → input matrices (S, 2, 3): flip test, resolutions and scales merged, grouped, refined.

        Maps are merged at the size of the reference scale's largest output (scale 1 when tested, else the
        first scale) and mapped to image pixels through that scale's warp.
        """
        k = self.layout.num_keypoints
        heatmaps, tags = [], []
        for image in images:
            x = image[None].to(self.device)
            flipped = self(x.flip(-1)) if self.codec.flip_test else None
            h, t = self.codec.merge_outputs(self(x), k, flipped, self.layout.flip_index)
            heatmaps.append(h)
            tags.append(t)
        ref = self.codec.scales.index(1.0) if 1.0 in self.codec.scales else 0
        size = (heatmaps[ref].shape[-1], heatmaps[ref].shape[-2])
        heat, tag = self.codec.merge_scales(heatmaps, tags, size)
        input_size = (images[ref].shape[-1], images[ref].shape[-2])
        to_image = heatmap_to_image_matrix(np.asarray(matrices[ref]), input_size, size)
        return self.codec.decode(heat[0], tag[0], to_image)

    # ---- training --------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs = self(batch["image"])
        n = len(outputs)
        terms = self.loss(
            outputs,
            [batch[f"heatmaps_{i}"] for i in range(n)],
            [batch[f"masks_{i}"] for i in range(n)],
            batch["keypoint_indices"],
        )
        size = len(batch["image"])
        self.log("train/loss", terms["loss"], prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        for key in ("push", "pull"):
            self.log(f"train/{key}", terms[key], on_step=False, on_epoch=True, batch_size=size)
        return terms["loss"]

    # ---- validation ------------------------------------------------------------------------
    def validation_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        max_people = self.codec.max_people
        for item in batch:
            found = self.predict_image(item["images"], item["matrices"])
            people = len(found.scores)
            self._val_outputs.append(
                {  # one row per person; index = image index × max_people + rank (unique across ranks)
                    "index": item["index"] * max_people + np.arange(people, dtype=np.int64),
                    "image_id": np.full(people, item["image_id"], dtype=np.int64),
                    "keypoints": found.keypoints.reshape(people, self.layout.num_keypoints, 3),
                    "score": found.scores,
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
        """Gather this epoch's people from every rank and score them against ``ann_file``."""
        predictions = gather_predictions(self._val_outputs)
        self._val_outputs = []
        self.last_results = bottomup_results(predictions)
        return evaluate_results(ann_file, self.last_results, dataset=self.test_cfg["dataset"])

    test_step = validation_step

    def on_test_epoch_end(self) -> None:
        self.last_metrics = self.compute_metrics(self.trainer.datamodule.val_dataset.ann_file)
        for key, value in self.last_metrics.items():
            self.log(f"test/{key}", value)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aidpose_config"] = self.run_config

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
