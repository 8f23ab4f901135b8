"""AP on visible and on occluded keypoints (AP_vis / AP_invis of the AID paper).

Definition. The validation ground truth is split into two copies:

* **visible**: keeps only visible keypoints — every ``v = 1`` (labelled, hidden) is set to ``v = 0``;
* **invisible**: keeps only occluded keypoints — every ``v = 2`` is set to ``v = 0``.

``num_keypoints`` is recounted on each copy, so an instance left with no keypoint is ignored exactly as
COCOeval ignores ``num_keypoints == 0`` instances (a detection matching it is neither a true nor a false
positive; the OKS against it falls back to pycocotools' distance-to-enlarged-box rule). The same
predictions are then scored with the standard COCO keypoint evaluation on each copy, and AP_vis /
AP_invis are the AP (OKS 0.50:0.95, all areas) of the two copies.

The OKS area term. Each instance keeps its original ``area`` (the segmentation area of the whole
person): OKS is normalised by the size of the person, not by the extent of the keypoints that survive
the split, so a keypoint error costs the same in AP, AP_vis and AP_invis, and the medium/large area
ranges contain the same people. OKS is averaged over the instance's surviving keypoints only.
"""

from __future__ import annotations

import numpy as np

from aidpose.evaluation.annotations import GroundTruth
from aidpose.evaluation.cocoeval import AREA_RANGES, coco_stats, evaluate
from aidpose.evaluation.results import Detections

VISIBLE, OCCLUDED = 2, 1


def keep_visibility(keypoints: np.ndarray, level: int) -> np.ndarray:
    """Copy of ground-truth keypoints (..., K, 3) where labels other than ``v == level`` become ``v = 0``."""
    kept = np.array(keypoints, dtype=np.float64, copy=True)
    kept[..., 2] = np.where(kept[..., 2] == level, kept[..., 2], 0)
    return kept


def visibility_split(gt: GroundTruth, level: int) -> GroundTruth:
    """The ground truth keeping only keypoints labelled ``v == level``, num_keypoints recounted."""
    return gt.with_keypoints(keep_visibility(gt.keypoints, level))


def evaluate_visibility(gt: GroundTruth, dt: Detections, sigmas: np.ndarray) -> dict[str, float]:
    """``{"AP_vis": ..., "AP_invis": ...}``: COCO AP of ``dt`` on the visible-only and occluded-only splits.

    NaN when a split has no instance left (e.g. a file without any ``v = 1`` keypoint has no AP_invis).
    """
    out = {}
    for name, level in (("AP_vis", VISIBLE), ("AP_invis", OCCLUDED)):
        split = visibility_split(gt, level)
        precision, recall = evaluate(split, dt, split.area, sigmas, list(AREA_RANGES.values()))
        out[name] = coco_stats(precision, recall)["AP"]
    return out
