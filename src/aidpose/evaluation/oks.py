"""Object keypoint similarity (OKS) as the COCO evaluation defines it, vectorised over (dt, gt) pairs."""

from __future__ import annotations

import numpy as np


def keypoint_variances(sigmas: np.ndarray) -> np.ndarray:
    """Per-keypoint ``(2 sigma)^2``, the ``vars`` of pycocotools ``computeOks``."""
    return (np.asarray(sigmas, dtype=np.float64) * 2) ** 2


def outside_box_distance(coords: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Distance of ``coords`` (P, K) to the interval ``[low, high]`` (P,) along one axis, 0 inside."""
    return np.maximum(0.0, low[:, None] - coords) + np.maximum(0.0, coords - high[:, None])


def _oks_block(
    dt_xy: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_boxes: np.ndarray,
    gt_areas: np.ndarray,
    variances: np.ndarray,
    labelled_first: np.ndarray,
    count: np.ndarray,
    pair_dt: np.ndarray,
    pair_gt: np.ndarray,
) -> np.ndarray:
    """:func:`oks_pairs` on one block of pairs (inputs prepared once by the caller)."""
    num_keypoints = gt_keypoints.shape[1]
    xd, yd = dt_xy[pair_dt, :, 0], dt_xy[pair_dt, :, 1]
    dx = xd - gt_keypoints[pair_gt, :, 0]
    dy = yd - gt_keypoints[pair_gt, :, 1]
    pair_count = count[pair_gt]
    unlabelled = np.flatnonzero(pair_count == 0)
    if len(unlabelled):
        box = gt_boxes[pair_gt[unlabelled]]
        x, y, w, h = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
        dx[unlabelled] = outside_box_distance(xd[unlabelled], x - w, x + w * 2)
        dy[unlabelled] = outside_box_distance(yd[unlabelled], y - h, y + h * 2)
        pair_count = np.where(pair_count > 0, pair_count, num_keypoints)
    e = (dx**2 + dy**2) / variances / (gt_areas[pair_gt] + np.spacing(1))[:, None] / 2
    oks = np.empty(len(pair_dt))
    for n in np.unique(pair_count):
        rows = np.flatnonzero(pair_count == n)
        values = (
            e[rows]
            if n == num_keypoints
            else np.take_along_axis(e[rows], labelled_first[pair_gt[rows], :n], 1)
        )
        oks[rows] = np.sum(np.exp(-values), axis=1) / n
    return oks


def oks_pairs(
    dt_xy: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_boxes: np.ndarray,
    gt_areas: np.ndarray,
    sigmas: np.ndarray,
    pair_dt: np.ndarray,
    pair_gt: np.ndarray,
    block: int = 8192,
) -> np.ndarray:
    """OKS of detection ``pair_dt[p]`` against ground truth ``pair_gt[p]`` for every pair p.

    Reproduces pycocotools ``COCOeval.computeOks`` bit for bit:
    ``e = (dx^2 + dy^2) / (2 sigma)^2 / (area + eps) / 2`` and ``OKS = sum(exp(-e)) / n`` over the
    ground truth's labelled keypoints (v > 0). A ground truth with no labelled keypoint is compared on
    all K keypoints, with (dx, dy) the distance of each predicted point to the ground-truth box grown
    by its own size on every side (``[x - w, x + 2w] x [y - h, y + 2h]``).
    The sum runs over exactly the same compacted values as pycocotools (rows grouped by their count of
    labelled keypoints), so the float result is identical, not merely close. Pairs are processed in
    blocks of ``block`` so temporaries stay small and cache-resident.

    Args:
        dt_xy: (D, K, 2) predicted coordinates.
        gt_keypoints: (G, K, 3) ground truth x, y, v.
        gt_boxes: (G, 4) ground truth boxes x, y, w, h.
        gt_areas: (G,) area scaling the OKS (COCO: segmentation area; CrowdPose: 0.53 x box area).
        sigmas: (K,) per-keypoint OKS sigmas.
        pair_dt, pair_gt: (P,) indices of the pairs to score.
    """
    labelled = gt_keypoints[..., 2] > 0
    count = np.count_nonzero(labelled, axis=1)
    labelled_first = np.argsort(~labelled, axis=1, kind="stable")  # labelled keypoints first, in order
    variances = keypoint_variances(sigmas)
    oks = np.empty(len(pair_dt))
    for lo in range(0, len(pair_dt), block):
        hi = lo + block
        oks[lo:hi] = _oks_block(
            dt_xy,
            gt_keypoints,
            gt_boxes,
            gt_areas,
            variances,
            labelled_first,
            count,
            pair_dt[lo:hi],
            pair_gt[lo:hi],
        )
    return oks


def oks_matrix(
    dt_xy: np.ndarray,
    gt_keypoints: np.ndarray,
    gt_boxes: np.ndarray,
    gt_areas: np.ndarray,
    sigmas: np.ndarray,
) -> np.ndarray:
    """(D, G) OKS of every detection against every ground truth of one image (see :func:`oks_pairs`)."""
    num_dt, num_gt = len(dt_xy), len(gt_keypoints)
    pair_dt, pair_gt = np.divmod(np.arange(num_dt * num_gt), num_gt) if num_gt else (np.zeros(0, int),) * 2
    return oks_pairs(dt_xy, gt_keypoints, gt_boxes, gt_areas, sigmas, pair_dt, pair_gt).reshape(
        num_dt, num_gt
    )
