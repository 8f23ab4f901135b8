"""``BottomUpPoseModule``: the thin Lightning wrapper around a bottom-up (associative-embedding) estimator.

Training: normalise the uint8 batch on the device, predict heatmaps and tags at every output resolution,
masked heatmap MSE + AE push/pull (``BottomUpLoss``). Validation: whole images at the codec's test scales,
flip test, multi-resolution and multi-scale merging, grouping and refinement (all in
``AssociativeEmbeddingCodec``), every rank's people gathered, then COCO results → metrics. What both paradigms
share is in ``aidpose.training.pose_module``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from aidpose.codecs.associative_embedding import BottomUpPrediction
from aidpose.data.bottomup import heatmap_to_image_matrix
from aidpose.data.keypoints import get_layout
from aidpose.evaluation.results import bottomup_results
from aidpose.models.bottomup_losses import BottomUpLoss
from aidpose.training.pose_module import PoseModule


class BottomUpPoseModule(PoseModule):
    """Bottom-up pose estimation (HigherHRNet / HRNet with associative embedding) on UDP heatmaps.

    The arguments are :class:`~aidpose.training.pose_module.PoseModule`'s, with

    - ``net``: backbone + bottom-up head producing a list of outputs, lowest resolution first;
    - ``loss``: a partial ``BottomUpLoss`` (factors and output flags from the config), completed here with the
      layout's ``num_keypoints``;
    - ``codec``: the run's ``AssociativeEmbeddingCodec`` (targets, merging, grouping; its ``scales`` and
      ``flip_test``).
    """

    def __init__(
        self, net: nn.Module, loss: Callable[..., BottomUpLoss], layout: str, **options: Any
    ) -> None:
        super().__init__(net, loss(num_keypoints=get_layout(layout).num_keypoints), layout=layout, **options)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """uint8 ``(N, 3, H, W)`` RGB images → outputs ``(N, C_i, h_i, w_i)``, lowest resolution first."""
        return list(super().forward(images))

    def scale_maps(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """One test scale's (3, h, w) uint8 input → the network outputs (lowest resolution first), and the
        heatmaps (1, K, H, W) and tags (1, K, H, W, L) with resolutions merged and the flip test if the codec
        asks for it."""
        x = image[None].to(self.device)
        outputs = self(x)
        flipped = self(x.flip(-1)) if self.codec.flip_test else None
        k, flip_index = self.layout.num_keypoints, self.layout.flip_index
        heatmaps, tags = self.codec.merge_outputs(outputs, k, flipped, flip_index)
        return outputs, heatmaps, tags

    @torch.no_grad()
    def predict_image(self, images: Sequence[torch.Tensor], matrices: np.ndarray) -> BottomUpPrediction:
        """People of one image from its inputs at the codec's scales ((3, h_s, w_s) uint8 each) and their
        image → input matrices (S, 2, 3): flip test, resolutions and scales merged, grouped, refined.

        Maps are merged at the size of the reference scale's largest output (scale 1 when tested, else the
        first scale) and mapped to image pixels through that scale's warp.
        """
        heatmaps, tags = [], []
        for image in images:
            _, h, t = self.scale_maps(image)
            heatmaps.append(h)
            tags.append(t)
        ref = self.codec.scales.index(1.0) if 1.0 in self.codec.scales else 0
        size = (heatmaps[ref].shape[-1], heatmaps[ref].shape[-2])
        heat, tag = self.codec.merge_scales(heatmaps, tags, size)
        input_size = (images[ref].shape[-1], images[ref].shape[-2])
        to_image = heatmap_to_image_matrix(np.asarray(matrices[ref]), input_size, size)
        return self.codec.decode(heat[0], tag[0], to_image)

    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs = self(batch["image"])
        n = len(outputs)
        terms = self.loss(
            outputs,
            [batch[f"heatmaps_{i}"] for i in range(n)],
            [batch[f"masks_{i}"] for i in range(n)],
            batch["keypoint_indices"],
        )
        return {key: terms[key] for key in ("loss", "push", "pull")}

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

    def coco_results(self, predictions: dict[str, np.ndarray]) -> list[dict]:
        """One result per person found, scored by the grouping (no rescoring or NMS)."""
        return bottomup_results(predictions)
