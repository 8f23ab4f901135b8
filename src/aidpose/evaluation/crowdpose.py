"""CrowdPose keypoint evaluation with the numbers of the official crowdpose-api ``COCOeval``.

Differences from COCO, all taken from the official code (crowdposetools/cocoeval.py):

* 14 keypoints with CrowdPose's sigmas;
* the OKS area term is ``0.53 * box area`` (``bbox[3] * bbox[2] * 0.53``) instead of the segmentation
  area, and the same value decides the area range (xtcocotools ``use_area=False``, faster-coco-eval
  ``iouType="keypoints_crowd"``); only the "all" range is reported;
* ground truth is ignored for ``iscrowd`` or ``num_keypoints == 0`` (the file's field), as pycocotools;
* AP_easy / AP_medium / AP_hard re-run the evaluation on the images whose ``crowdIndex`` is < 0.2,
  in [0.2, 0.8) and >= 0.8, and report the plain mean of the whole precision array (all thresholds and
  recall levels) rounded to 4 decimals, as the official ``get_type_result`` does.

xtcocotools' ``keypoints_crowd`` additionally drops detections whose keypoint scores are all 0 and
counts labelled keypoints itself; the official code and faster-coco-eval do neither, nor does this.
"""

from __future__ import annotations

import numpy as np

from aidpose.data.keypoints import CROWDPOSE
from aidpose.evaluation.annotations import GroundTruth
from aidpose.evaluation.cocoeval import IOU_THRESHOLDS, evaluate, summary_value
from aidpose.evaluation.results import Detections

BOX_AREA_FACTOR = 0.53
ALL_AREAS = (0**2, 1e5**2)
CROWD_INDEX_SPLITS = (0.2, 0.8)
CROWDPOSE_STATS: dict[str, tuple[bool, float | None]] = {
    "AP": (True, None),
    "AP50": (True, 0.5),
    "AP75": (True, 0.75),
    "AR": (False, None),
    "AR50": (False, 0.5),
    "AR75": (False, 0.75),
}


def box_area(bbox: np.ndarray) -> np.ndarray:
    """CrowdPose's instance area, ``h * w * 0.53`` of (G, 4) x, y, w, h boxes."""
    return bbox[:, 3] * bbox[:, 2] * BOX_AREA_FACTOR


def crowd_level(crowd_index: np.ndarray, splits: tuple[float, float] = CROWD_INDEX_SPLITS) -> np.ndarray:
    """0 (easy), 1 (medium) or 2 (hard) per image: crowdIndex < 0.2, < 0.8, otherwise."""
    return np.where(crowd_index < splits[0], 0, np.where(crowd_index < splits[1], 1, 2))


def split_ap(precision: np.ndarray) -> float:
    """Official ``get_type_result`` value: mean of ``precision[:, :, :, 0, :]`` rounded to 4 decimals.

    The official mean includes pycocotools' -1 entries; a split without ground truth (all -1) gives -1.
    """
    return round(float(np.mean(precision[:, :, :, 0, :])), 4)


def evaluate_crowdpose(
    gt: GroundTruth, dt: Detections, sigmas: np.ndarray = CROWDPOSE.sigmas
) -> dict[str, float]:
    """AP, AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard of ``dt`` on a CrowdPose file."""
    if gt.crowd_index is None:
        raise ValueError(
            f"{gt.source}: CrowdPose evaluation needs a 'crowdIndex' on every image entry "
            "(it splits AP into easy/medium/hard); is this a CrowdPose annotation file?"
        )
    area = box_area(gt.bbox)
    precision, recall = evaluate(gt, dt, area, sigmas, [ALL_AREAS])
    stats = {
        name: summary_value(
            precision, recall, ap, None if iou is None else np.where(abs(iou - IOU_THRESHOLDS) < 0.01)[0], 0
        )
        for name, (ap, iou) in CROWDPOSE_STATS.items()
    }
    level = crowd_level(gt.crowd_index)
    for value, name in enumerate(("AP_easy", "AP_medium", "AP_hard")):
        split_precision, _ = evaluate(gt, dt, area, sigmas, [ALL_AREAS], image_mask=level == value)
        stats[name] = split_ap(split_precision)
    return stats
