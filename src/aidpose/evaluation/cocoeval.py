"""Fast COCO keypoint evaluation with the exact numbers of pycocotools ``COCOeval(iouType="keypoints")``.

The pipeline is pycocotools' own, each step vectorised: keep the 20 best detections per image
(:func:`~aidpose.evaluation.matching.top_detections`), score every (detection, ground truth) pair of an
image (:func:`~aidpose.evaluation.oks.oks_pairs`), match greedily over all images, thresholds and area
ranges at once (:func:`~aidpose.evaluation.matching.greedy_match`), accumulate precision/recall
(:func:`precision_recall`) and average it (:func:`summary_value`).
"""

from __future__ import annotations

import numpy as np

from aidpose.data.keypoints import COCO
from aidpose.evaluation.annotations import GroundTruth
from aidpose.evaluation.matching import greedy_match, image_pairs, rank_within_image, top_detections
from aidpose.evaluation.oks import oks_pairs
from aidpose.evaluation.results import Detections

# pycocotools Params.setKpParams
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 20
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0**2, 1e5**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}
# name -> (precision (True) or recall, OKS threshold or None for the 0.50:0.95 mean, area range)
COCO_STATS: dict[str, tuple[bool, float | None, str]] = {
    "AP": (True, None, "all"),
    "AP50": (True, 0.5, "all"),
    "AP75": (True, 0.75, "all"),
    "APM": (True, None, "medium"),
    "APL": (True, None, "large"),
    "AR": (False, None, "all"),
    "AR50": (False, 0.5, "all"),
    "AR75": (False, 0.75, "all"),
    "ARM": (False, None, "medium"),
    "ARL": (False, None, "large"),
}


def gt_ignore_flags(
    ignore: np.ndarray, area: np.ndarray, area_ranges: list[tuple[float, float]]
) -> np.ndarray:
    """(A, G) pycocotools ``_ignore``: the annotation's ignore flag, or its area outside the range."""
    low, high = np.array(area_ranges, dtype=np.float64).T
    return ignore[None, :] | (area[None, :] < low[:, None]) | (area[None, :] > high[:, None])


def detection_flags(
    matched_gt: np.ndarray,
    gt_ignore: np.ndarray,
    gt_id_nonzero: np.ndarray,
    dt_area: np.ndarray,
    area_ranges: list[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """(A, T, D) "matched" (pycocotools ``dtm != 0``) and ``dtIgnore`` flags of each detection.

    A detection matched to a ground truth inherits its ignore flag; an unmatched one is ignored when its
    own area is outside the range. pycocotools stores the matched ground truth's id in ``dtm`` and tests
    it for non-zero, so a match to an annotation whose id is 0 counts as unmatched; this is reproduced.
    """
    is_matched = matched_gt >= 0
    if gt_ignore.shape[1]:
        safe = np.where(is_matched, matched_gt, 0)
        area_index = np.arange(gt_ignore.shape[0])[:, None, None]
        inherited = is_matched & gt_ignore[area_index, safe]
        counted = is_matched & gt_id_nonzero[safe]
    else:  # no ground truth to match (detections on images without people): nothing is matched
        inherited = counted = np.zeros(matched_gt.shape, dtype=bool)
    low, high = np.array(area_ranges, dtype=np.float64).T
    outside = (dt_area[None, :] < low[:, None]) | (dt_area[None, :] > high[:, None])
    return counted, inherited | (~counted & outside[:, None, :])


def precision_recall(
    score: np.ndarray, matched: np.ndarray, ignored: np.ndarray, num_positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T, R, A) at the 101 recall levels and final recall (T, A), as ``COCOeval.accumulate``.

    Detections of all images are ordered by ``np.argsort(-score, kind='mergesort')``; ignored ones are
    neither true nor false positives. Precision is made monotone (running maximum from the right) and
    read at the first point reaching each recall level, 0 past the last detection. An area range
    without non-ignored ground truth keeps pycocotools' -1.
    """
    num_ranges, num_thr, num_dt = matched.shape
    precision = -np.ones((num_thr, len(RECALL_THRESHOLDS), num_ranges))
    recall = -np.ones((num_thr, num_ranges))
    order = np.argsort(-score, kind="mergesort")
    matched, ignored = matched[..., order], ignored[..., order]
    tp_sum = np.cumsum(matched & ~ignored, axis=-1).astype(np.float64)
    fp_sum = np.cumsum(~matched & ~ignored, axis=-1).astype(np.float64)
    for a in range(num_ranges):
        if num_positive[a] == 0:
            continue
        rc = tp_sum[a] / num_positive[a]
        pr = tp_sum[a] / (fp_sum[a] + tp_sum[a] + np.spacing(1))
        recall[:, a] = rc[:, -1] if num_dt else 0
        envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(num_thr):
            index = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            valid = index < num_dt
            precision[t, :, a] = 0.0
            precision[t, valid, a] = envelope[t, index[valid]]
    return precision, recall


def evaluate_category(
    gt: GroundTruth,
    gt_rows: np.ndarray,
    gt_area: np.ndarray,
    dt: Detections,
    dt_rows: np.ndarray,
    sigmas: np.ndarray,
    area_ranges: list[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T, R, A) and recall (T, A) of one category over the given ground-truth/detection rows.

    ``gt_area`` (len(gt_rows),) scales the OKS and decides the area range; the base ignore flag is
    pycocotools': ``iscrowd`` or ``num_keypoints == 0``.
    """
    top = dt_rows[top_detections(dt.image_index[dt_rows], dt.score[dt_rows], MAX_DETS)]
    dt_image = dt.image_index[top]
    gt_image = gt.image_index[gt_rows]
    pair_dt, pair_gt = image_pairs(dt_image, gt_image, gt.num_images)
    oks = oks_pairs(
        dt.keypoints[top, :, :2], gt.keypoints[gt_rows], gt.bbox[gt_rows], gt_area, sigmas, pair_dt, pair_gt
    )
    ignore = gt_ignore_flags(gt.iscrowd[gt_rows] | (gt.num_keypoints[gt_rows] == 0), gt_area, area_ranges)
    matched_gt = greedy_match(
        oks,
        pair_dt,
        pair_gt,
        rank_within_image(dt_image),
        ignore,
        gt.iscrowd[gt_rows],
        IOU_THRESHOLDS,
        len(top),
    )
    matched, ignored = detection_flags(matched_gt, ignore, gt.ann_id[gt_rows] != 0, dt.area[top], area_ranges)
    return precision_recall(dt.score[top], matched, ignored, np.count_nonzero(~ignore, axis=1))


def evaluate(
    gt: GroundTruth,
    dt: Detections,
    gt_area: np.ndarray,
    sigmas: np.ndarray,
    area_ranges: list[tuple[float, float]],
    image_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``eval['precision']`` (T, R, K, A, 1) and ``eval['recall']`` (T, K, A, 1).

    Every category of the file is evaluated (K = len(gt.category_ids)); ``image_mask`` (I,) restricts the
    evaluation to some images, as setting ``params.imgIds`` does.
    """
    if image_mask is None:
        image_mask = np.ones(gt.num_images, dtype=bool)
    shape = (len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(gt.category_ids), len(area_ranges), 1)
    precision, recall = -np.ones(shape), -np.ones((shape[0], *shape[2:]))
    for k, category in enumerate(gt.category_ids):
        gt_rows = np.flatnonzero((gt.category_id == category) & image_mask[gt.image_index])
        dt_rows = np.flatnonzero((dt.category_id == category) & image_mask[dt.image_index])
        precision[:, :, k, :, 0], recall[:, k, :, 0] = evaluate_category(
            gt, gt_rows, gt_area[gt_rows], dt, dt_rows, sigmas, area_ranges
        )
    return precision, recall


def summary_value(
    precision: np.ndarray, recall: np.ndarray, ap: bool, iou_index: np.ndarray | None, area_index: int
) -> float:
    """pycocotools ``summarize._summarize``: mean of the entries > -1 (same selection and order).

    Returns -1 where pycocotools does (no non-ignored ground truth in that setting).
    """
    s = precision if ap else recall
    if iou_index is not None:
        s = s[iou_index]
    s = s[:, :, :, [area_index], [0]] if ap else s[:, :, [area_index], [0]]
    valid = s[s > -1]
    return float(np.mean(valid)) if len(valid) else -1.0


def require_areas(gt: GroundTruth) -> None:
    """COCO scales OKS by the segmentation area: every annotation needs a finite ``area``."""
    missing = ~np.isfinite(gt.area)
    if missing.any():
        i = int(np.argmax(missing))
        raise ValueError(
            f"{gt.source}: annotation id={gt.ann_id[i]} has no 'area', which COCO keypoint evaluation "
            "uses to scale OKS; for files without areas (e.g. CrowdPose) use dataset='crowdpose'"
        )


def coco_stats(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The ten COCO keypoint summary numbers (``COCOeval.stats``) keyed AP, AP50, ..., ARL."""
    area_names = list(AREA_RANGES)
    return {
        name: summary_value(
            precision,
            recall,
            ap,
            None if iou is None else np.where(iou == IOU_THRESHOLDS)[0],
            area_names.index(area),
        )
        for name, (ap, iou, area) in COCO_STATS.items()
    }


def evaluate_coco(gt: GroundTruth, dt: Detections, sigmas: np.ndarray = COCO.sigmas) -> dict[str, float]:
    """COCO keypoint stats of ``dt`` on ``gt``, equal to pycocotools ``COCOeval(iouType='keypoints')``."""
    require_areas(gt)
    precision, recall = evaluate(gt, dt, gt.area, sigmas, list(AREA_RANGES.values()))
    return coco_stats(precision, recall)
