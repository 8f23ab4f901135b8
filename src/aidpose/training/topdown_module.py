"""``TopDownPoseModule``: the thin Lightning wrapper around a top-down heatmap estimator.

Training: normalise the uint8 batch on the device, the codec's targets under the paradigm's loss (UDP heatmaps:
MSE with target weights). Validation: flip test and decoding to image coordinates by the codec, every rank's
predictions gathered, then COCO results (rescoring, OKS-NMS) → metrics. Whole images: the given person boxes
are cropped as validation crops them. All the math lives in ``aidpose.codecs``, ``aidpose.geometry`` and
``aidpose.evaluation``; what both paradigms share is in ``aidpose.training.pose_module``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aidpose.codecs.base import Prediction
from aidpose.evaluation.results import rescore_by_keypoints, suppress_people, topdown_results
from aidpose.geometry.inference import crop_boxes
from aidpose.inference import filter_boxes, whole_image_box
from aidpose.training.pose_module import PoseModule


class TopDownPoseModule(PoseModule):
    """Top-down pose estimation (SimpleBaseline / HRNet style): one person crop per network input.

    The arguments are :class:`~aidpose.training.pose_module.PoseModule`'s, with

    - ``net``: backbone + head producing the codec's outputs for a batch of crops;
    - ``loss``: the codec's loss ``(outputs, batch) -> terms`` (UDP heatmaps: ``KeypointMSELoss``);
    - ``codec``: the run's top-down codec (input/heatmap size, flip test, decoding);
    - ``test``: validation/test options: ``nms`` ("oks", "soft_oks", "none"), ``nms_thr``, ``soft_nms_thr``,
      ``kpt_score_thr`` (rescoring threshold), ``dataset`` ("coco" or "crowdpose" metrics);
    - ``padding``: box → crop padding of :meth:`predict_people` (``paradigm.padding``, as the val dataset's);
    - ``batch_size``: crops per forward pass of :meth:`predict_people`.

    (``padding`` and ``batch_size`` default to the config's values for checkpoints written before they were
    module options.)
    """

    needs_boxes = True

    def __init__(self, *args: Any, padding: float = 1.25, batch_size: int = 32, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.padding = padding
        self.batch_size = batch_size

    def test_outputs(self, crops: torch.Tensor) -> Any:
        """The network's outputs of uint8 crops, merged with those of the mirrored crops by the codec's flip test
        (UDP: no shift) when ``codec.flip_test``."""
        outputs = self(crops)
        if self.codec.flip_test:
            outputs = self.codec.merge_flip(outputs, self(crops.flip(-1)), self.flip_index)
        return outputs

    def prediction_rows(self, outputs: Any, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        found = self.codec.decode(outputs, batch["inv_affine"].cpu().numpy())
        return {
            "index": batch["index"].cpu().numpy(),
            "image_id": batch["image_id"].cpu().numpy(),
            "keypoints": found.keypoints,
            "bbox_score": batch["bbox_score"].cpu().numpy(),
            "area": batch["area"].cpu().numpy(),
        }

    @torch.no_grad()
    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int = 0) -> dict[str, np.ndarray]:
        """One row per crop: its keypoints in image pixels, box score and box area (rescored in :meth:`coco_results`)."""
        return self.prediction_rows(self.test_outputs(batch["image"]), batch)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        outputs = self.test_outputs(batch["image"])
        loss = self.loss(outputs, batch)["loss"]
        self.log("val/loss", loss, sync_dist=True, batch_size=len(batch["image"]))
        self._val_outputs.append(self.prediction_rows(outputs, batch))

    @torch.no_grad()
    def predict_people(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None
    ) -> list[Prediction]:
        """The people in each image's boxes (None: the whole image is one box of score 1): crops, flip test and
        decoding as validation, then rescoring and NMS (``test.nms``, ``nms_thr``, ``kpt_score_thr``)."""
        found = []
        for i, image in enumerate(images):
            if boxes is None:
                height, width = image.shape[:2]
                box, score, _ = filter_boxes(whole_image_box(width, height), np.ones(1), (width, height))
                image_boxes = np.concatenate([box, score[:, None]], axis=1)
            else:
                image_boxes = np.asarray(boxes[i], dtype=np.float64).reshape(-1, 5)
            if not len(image_boxes):
                found.append(Prediction(np.zeros((0, self.layout.num_keypoints, 3), np.float32), np.zeros(0)))
                continue
            crops, to_image = crop_boxes(image, image_boxes[:, :4], self.codec.input_size, self.padding)
            keypoints = np.zeros((len(crops), self.layout.num_keypoints, 3), dtype=np.float32)
            for start in range(0, len(crops), self.batch_size):
                batch = torch.from_numpy(crops[start : start + self.batch_size]).to(self.device)
                outputs = self.test_outputs(batch)
                keypoints[start : start + len(batch)] = self.codec.decode(
                    outputs, to_image[start : start + len(batch)]
                ).keypoints
            scores = rescore_by_keypoints(
                image_boxes[:, 4], keypoints[..., 2], self.test_cfg["kpt_score_thr"]
            )
            areas = (image_boxes[:, 2] * image_boxes[:, 3]).astype(np.float32)
            keep, kept_scores = suppress_people(
                keypoints, scores, areas, sigmas=self.layout.sigmas, nms=self.test_cfg["nms"],
                nms_thr=self.test_cfg["nms_thr"], soft_nms_thr=self.test_cfg["soft_nms_thr"],
            )  # fmt: skip
            found.append(Prediction(keypoints[keep], np.asarray(kept_scores, dtype=np.float64)))
        return found

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
