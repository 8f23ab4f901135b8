"""``BottomUpPoseModule``: the thin Lightning wrapper around a bottom-up (associative-embedding) estimator.

Training: normalise the uint8 batch on the device, predict heatmaps and tags at every output resolution,
masked heatmap MSE + AE push/pull (``BottomUpLoss``) on the codec's targets. Validation and whole images: every
test scale of the image, flip test, multi-resolution and multi-scale merging, grouping and refinement (all in
``AssociativeEmbeddingCodec``), every rank's people gathered, then COCO results → metrics. What both paradigms
share is in ``aidpose.training.pose_module``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from aidpose.codecs.base import Prediction
from aidpose.codecs.udp_heatmap import heatmap_to_image_matrix
from aidpose.data.keypoints import get_layout
from aidpose.evaluation.results import coco_results
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

    needs_boxes = False

    def __init__(
        self, net: nn.Module, loss: Callable[..., BottomUpLoss], layout: str, **options: Any
    ) -> None:
        super().__init__(net, loss(num_keypoints=get_layout(layout).num_keypoints), layout=layout, **options)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """uint8 ``(N, 3, H, W)`` RGB images → outputs ``(N, C_i, h_i, w_i)``, lowest resolution first."""
        return list(super().forward(images))

    def maps_at_scale(self, image: np.ndarray) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """One test scale's (3, h, w) uint8 input → the network's outputs (lowest resolution first) and the
        merged maps: heatmaps (1, K, H, W) and tags (1, K, H, W, L), with the flip test if the codec asks for it."""
        x = torch.as_tensor(image)[None].to(self.device)
        outputs = self(x)
        k = self.layout.num_keypoints
        maps = self.codec.merge_outputs(outputs, k)
        if self.codec.flip_test:
            mirrored = self.codec.merge_outputs(self(x.flip(-1)), k)
            maps = self.codec.merge_flip(maps, mirrored, self.layout.flip_index)
        return outputs, *maps

    @torch.no_grad()
    def find_people(self, images: Sequence[np.ndarray], matrices: np.ndarray) -> Prediction:
        """People of one image from its inputs at the codec's scales ((3, h_s, w_s) uint8 each) and their
        image → input matrices (S, 2, 3): flip test, resolutions and scales merged, grouped, refined.

        Maps are merged at the size of the reference scale's largest output (scale 1 when tested, else the
        first scale) and mapped to image pixels through that scale's warp.
        """
        heatmaps, tags = [], []
        for image in images:
            _, h, t = self.maps_at_scale(image)
            heatmaps.append(h)
            tags.append(t)
        ref = self.codec.scales.index(1.0) if 1.0 in self.codec.scales else 0
        size = (heatmaps[ref].shape[-1], heatmaps[ref].shape[-2])
        heat, tag = self.codec.merge_scales(heatmaps, tags, size)
        input_size = (images[ref].shape[-1], images[ref].shape[-2])
        to_image = heatmap_to_image_matrix(np.asarray(matrices[ref]), input_size, size)
        return self.codec.decode((heat[0], tag[0]), to_image)

    def predict_step(self, batch: list[dict[str, Any]], batch_idx: int = 0) -> dict[str, np.ndarray]:
        """One row per person found in each image of the batch, scored by the grouping."""
        max_people = self.codec.max_people
        rows = []
        for item in batch:
            found = self.find_people(item["images"], item["matrices"])
            people = len(found.scores)
            rows.append(
                {  # index = image index × max_people + rank (unique across ranks)
                    "index": item["index"] * max_people + np.arange(people, dtype=np.int64),
                    "image_id": np.full(people, item["image_id"], dtype=np.int64),
                    "keypoints": found.keypoints.reshape(people, self.layout.num_keypoints, 3),
                    "score": found.scores,
                }
            )
        return {key: np.concatenate([row[key] for row in rows]) for key in rows[0]}

    def predict_people(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None
    ) -> list[Prediction]:
        """Every person in each image (no boxes: a bottom-up model finds them itself)."""
        if boxes is not None:
            raise ValueError(
                "a bottom-up model finds every person without boxes; predict without them (boxes= is for "
                "top-down models)"
            )
        return [self.find_people(*self.codec.test_inputs(image)) for image in images]

    def coco_results(self, predictions: dict[str, np.ndarray]) -> list[dict]:
        """One result per person found, scored by the grouping (no rescoring or NMS)."""
        return coco_results(predictions)
