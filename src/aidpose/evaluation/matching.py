"""Greedy COCO matching of detections to ground truth, vectorised over images, thresholds and area ranges."""

from __future__ import annotations

from itertools import pairwise

import numpy as np


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def rank_within_image(image: np.ndarray) -> np.ndarray:
    """Position of each detection inside its image's run (``image`` sorted)."""
    starts = group_starts(image)
    lengths = np.diff(np.r_[starts, len(image)])
    return np.arange(len(image)) - np.repeat(starts, lengths)


def top_detections(image: np.ndarray, score: np.ndarray, max_dets: int) -> np.ndarray:
    """Indices of the ``max_dets`` best detections of every image, ordered by image then score.

    Reproduces pycocotools: per image, ``np.argsort(-score, kind='mergesort')`` (a stable sort, so equal
    scores keep results order) truncated to ``maxDets[-1]`` (20 for keypoints).
    """
    order = np.lexsort((-score, image))  # stable: ties keep results order
    keep = rank_within_image(image[order]) < max_dets
    return order[keep]


def image_pairs(dt_image: np.ndarray, gt_image: np.ndarray, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, ground truth) index pairs sharing an image, ordered by detection then ground truth.

    ``dt_image`` and ``gt_image`` are sorted image positions in ``[0, num_images)``.
    """
    gt_count = np.bincount(gt_image, minlength=num_images)
    gt_start = np.cumsum(gt_count) - gt_count
    per_dt = gt_count[dt_image]
    pair_dt = np.repeat(np.arange(len(dt_image)), per_dt)
    offset = np.arange(len(pair_dt)) - np.repeat(np.cumsum(per_dt) - per_dt, per_dt)
    return pair_dt, gt_start[dt_image][pair_dt] + offset


def last_best_in_segment(mask: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per segment, the position of the largest ``values`` where ``mask`` holds; the last one on ties.

    ``mask`` (..., n), ``values`` (n,), segments begin at ``starts``; returns (..., len(starts)), -1 where
    the mask is empty. "Last on ties" is pycocotools' ``if ious[d, g] < iou: continue`` followed by
    ``iou = ious[d, g]``, which lets a later equal OKS take the match.
    """
    masked = np.where(mask, values, -np.inf)
    best = np.maximum.reduceat(masked, starts, axis=-1)
    lengths = np.diff(np.r_[starts, mask.shape[-1]])
    is_best = mask & (masked == np.repeat(best, lengths, axis=-1))
    position = np.where(is_best, np.arange(mask.shape[-1]), -1)
    return np.maximum.reduceat(position, starts, axis=-1)


def greedy_match(
    oks: np.ndarray,
    pair_dt: np.ndarray,
    pair_gt: np.ndarray,
    dt_rank: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
    num_dt: int,
) -> np.ndarray:
    """Matched ground-truth index of every detection per area range and threshold (-1: unmatched).

    Reproduces the loop of pycocotools ``COCOeval.evaluateImg``: detections of an image are visited by
    score (``dt_rank``), and each takes the unmatched ground truth of highest OKS >= threshold, preferring
    non-ignored ground truth (pycocotools sorts ignored ones last and stops there once it holds a regular
    match) and, among equal OKS, the later one. Crowd ground truth can absorb any number of detections.
    All images advance together one rank at a time, over every (area range, threshold) at once.

    Args:
        oks: (P,) OKS of the pairs ``(pair_dt, pair_gt)``, ordered by detection then ground truth.
        dt_rank: (D,) rank of each detection inside its image (0 = best score).
        gt_ignore: (A, G) ignore flag of each ground truth per area range.
        gt_crowd: (G,) crowd flag.
        thresholds: (T,) OKS thresholds.
    """
    num_ranges, num_gt = gt_ignore.shape
    matched = np.full((num_ranges, len(thresholds), num_dt), -1, dtype=np.int64)
    if len(oks) == 0:
        return matched
    taken = np.zeros((num_ranges, len(thresholds), num_gt), dtype=bool)
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    pair_rank = dt_rank[pair_dt]
    by_rank = np.argsort(pair_rank, kind="stable")
    bounds = np.searchsorted(pair_rank[by_rank], np.arange(pair_rank.max() + 2))
    for lo, hi in pairwise(bounds):
        if lo == hi:
            continue
        idx = by_rank[lo:hi]
        p_dt, p_gt, p_oks = pair_dt[idx], pair_gt[idx], oks[idx]
        starts = group_starts(p_dt)
        candidate = (~taken[:, :, p_gt] | gt_crowd[p_gt]) & (p_oks >= thr)
        ignored = gt_ignore[:, None, p_gt]
        regular = last_best_in_segment(candidate & ~ignored, p_oks, starts)
        fallback = last_best_in_segment(candidate & ignored, p_oks, starts)
        choice = np.where(regular >= 0, regular, fallback)
        a, t, s = np.nonzero(choice >= 0)
        local = choice[a, t, s]
        matched[a, t, p_dt[local]] = p_gt[local]
        taken[a, t, p_gt[local]] = True
    return matched
