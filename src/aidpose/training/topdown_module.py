"""``TopDownPoseModule``: the thin Lightning wrapper around a top-down heatmap estimator.

Training: normalise the uint8 batch on the device, predict heatmaps, MSE loss with target weights.
Validation: flip test, UDP decode to image coordinates, gather every rank's predictions, then
COCO results → metrics. All the math lives in ``aidpose.codecs`` and ``aidpose.evaluation``; what both
paradigms share is in ``aidpose.training.pose_module``.
"""

from __future__ import annotations

import numpy as np
import torch

from aidpose.evaluation.results import topdown_results
from aidpose.training.pose_module import PoseModule


class TopDownPoseModule(PoseModule):
    """Top-down pose estimation (SimpleBaseline / HRNet style) on UDP heatmaps.

    The arguments are :class:`~aidpose.training.pose_module.PoseModule`'s, with

    - ``net``: backbone + head producing ``(N, K, h, w)`` heatmaps;
    - ``loss``: heatmap loss ``(pred, target, target_weight) -> scalar``;
    - ``codec``: the run's ``UDPHeatmapCodec`` (input/heatmap size, decoding with its DARK blur kernel);
    - ``test``: validation/test options: ``flip``, ``nms`` ("oks", "soft_oks", "none"), ``nms_thr``,
      ``soft_nms_thr``, ``kpt_score_thr`` (rescoring threshold), ``dataset`` ("coco" or "crowdpose" metrics).
    """

    def predict_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps with the flip test (average with the flipped image's heatmaps, UDP: no shift)."""
        heatmaps = self(images)
        if self.test_cfg["flip"]:
            flipped = self(images.flip(-1))
            heatmaps = 0.5 * (heatmaps + self.codec.flip_back(flipped, self.flip_index))
        return heatmaps

    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(self(batch["image"]), batch["target"], batch["target_weight"])}

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

    def coco_results(self, predictions: dict[str, np.ndarray]) -> list[dict]:
        """Rescored, OKS-NMS'ed people per image (``test.nms``, ``nms_thr``, ``kpt_score_thr``)."""
        return topdown_results(
            predictions,
            sigmas=self.layout.sigmas,
            nms=self.test_cfg["nms"],
            nms_thr=self.test_cfg["nms_thr"],
            soft_nms_thr=self.test_cfg["soft_nms_thr"],
            kpt_score_thr=self.test_cfg["kpt_score_thr"],
        )
