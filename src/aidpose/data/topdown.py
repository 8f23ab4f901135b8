"""``TopDownDataset``: one person crop per item through the shared sample pipeline (``aidpose.data.pipeline``).

Per item: sample the augmentation of the person's box, read the image (at the reduction the crop allows, or from
the decoded-image cache), warp once with the UDP matrix (flip and reduction folded in), let the dropper drop
information from the crop, encode the codec's targets.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from aidpose.data.coco import image_sizes, load_instances
from aidpose.data.pipeline import SampleDataset, WarpedSample
from aidpose.geometry.affine import box_to_center_scale, item_inverse_affine
from aidpose.geometry.augment import AugmentationParams


class TopDownDataset(SampleDataset):
    """Top-down person crops of a COCO-format keypoint dataset.

    Args: :class:`~aidpose.data.pipeline.SampleDataset`'s (``codec``: the run's top-down codec, ``train=False``:
    plain centred crops), and

        boxes: ``"gt"`` (annotated boxes) or ``"detections"`` (boxes of ``det_file``, evaluation only).
        det_score_thr, min_box_area: detection box filters.
        padding: box → crop padding factor.

    Items (besides the image, the codec's targets and the dropper's statistics): ``image_id``, ``ann_id``,
    ``inv_affine`` (crop → image), ``bbox_score``, ``area`` and ``index`` (the instance read).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        train: bool,
        boxes: str = "gt",
        det_file: str | os.PathLike | None = None,
        det_score_thr: float = 0.0,
        min_box_area: float = 0.0,
        padding: float = 1.25,
        **options: Any,
    ) -> None:
        if train and boxes != "gt":
            raise ValueError(
                "training needs annotated boxes: set boxes='gt' (boxes='detections' is for evaluation)"
            )
        super().__init__(ann_file, image_dir, train=train, **options)
        self.coco, self.records, self.summary = load_instances(
            ann_file,
            image_dir,
            num_keypoints=self.layout.num_keypoints,
            layout=self.layout.name,
            boxes=boxes,
            det_file=det_file,
            det_score_thr=det_score_thr,
            min_box_area=min_box_area,
            skip_unreadable_images=self.image_reader.skip_unreadable,
        )
        self.files = self.records.file
        self.image_sizes = image_sizes(self.coco, self.records.image_id, ann_file, np.int64)
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.centers, self.scales = box_to_center_scale(self.records.bbox, self.aspect_ratio, padding)
        self.upper_body_ids = self.layout.upper_body_ids
        self.open_image_cache()

    def __len__(self) -> int:
        return len(self.records)

    def people(self, index: int) -> np.ndarray:
        return self.records.keypoints[index][None]

    def warp_params(
        self, index: int, image_size: tuple[int, int], people: np.ndarray, rng: np.random.Generator | None
    ) -> AugmentationParams:
        """The padded box of instance ``index``, with HRNet's augmentation when training."""
        center, scale = self.centers[index], self.scales[index]
        if self.augmentation is None:
            return AugmentationParams(center, scale, 0.0, False, False)
        return self.augmentation.sample(rng, people[0], center, scale, self.aspect_ratio, self.upper_body_ids)

    def smallest_warp_scale(self, index: int) -> np.ndarray:
        if self.augmentation is None:
            return self.scales[index]
        keypoints = self.records.keypoints[index]
        return self.augmentation.smallest_scale(
            keypoints, self.scales[index], self.aspect_ratio, self.upper_body_ids
        )

    def item_fields(self, sample: WarpedSample, targets: dict[str, Any]) -> dict[str, Any]:
        index = sample.index
        return {
            "image_id": np.int64(self.records.image_id[index]),
            "ann_id": np.int64(self.records.ann_id[index]),
            "inv_affine": item_inverse_affine(sample.matrix),
            "bbox_score": np.float32(self.records.score[index]),
            "area": np.float32(self.records.area[index]),
            "index": np.int64(index),
        }
