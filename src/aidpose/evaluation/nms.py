"""OKS non-maximum suppression of the poses of one image (HRNet / mmpose post-processing)."""

from __future__ import annotations

import numpy as np

from aidpose.evaluation.oks import keypoint_variances


def pose_oks(
    keypoints: np.ndarray,
    others: np.ndarray,
    area: float,
    other_areas: np.ndarray,
    sigmas: np.ndarray,
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS between one pose (K, 3) and others (N, K, 3), both predictions (mmpose ``oks_iou``).

    The scale is the mean of the two areas: ``e = d^2 / (2 sigma)^2 / ((a + a_n) / 2 + eps) / 2``.
    With ``vis_thr``, only keypoints whose score exceeds it in both poses count; a pair with no such
    keypoint has OKS 0.
    """
    d2 = ((others[..., :2] - keypoints[None, :, :2]) ** 2).sum(axis=-1)
    scale = (area + np.asarray(other_areas, dtype=np.float64)) / 2 + np.spacing(1)
    e = d2 / keypoint_variances(sigmas) / scale[:, None] / 2
    if vis_thr is None:
        return np.exp(-e).mean(axis=1)
    used = (keypoints[None, :, 2] > vis_thr) & (others[..., 2] > vis_thr)
    count = used.sum(axis=1)
    total = np.where(used, np.exp(-e), 0.0).sum(axis=1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; equal scores keep input order (stable, unlike ``argsort()[::-1]``)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray,
    thr: float = 0.9,
    vis_thr: float | None = None,
) -> np.ndarray:
    """Greedy OKS-NMS: keep the best pose, drop every remaining pose with OKS > ``thr`` to it, repeat.

    Args:
        keypoints: (N, K, 3) x, y, score of each pose.
        scores: (N,) instance scores.
        areas: (N,) instance areas (top-down: the person box ``w * h``).
        sigmas: (K,) OKS sigmas.
        thr: suppression threshold (poses with OKS <= thr to every kept pose survive).
        vis_thr: optional keypoint-score threshold for the OKS (see :func:`pose_oks`).

    Returns:
        Indices of the kept poses, best first.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    order = _score_order(scores)
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        overlap = pose_oks(
            keypoints[best], keypoints[rest], areas[best], np.asarray(areas)[rest], sigmas, vis_thr
        )
        order = rest[overlap <= thr]
    return np.array(keep, dtype=np.int64)


def soft_oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray,
    thr: float = 0.3,
    max_dets: int = 20,
    method: str = "gaussian",
    vis_thr: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft OKS-NMS: instead of dropping overlapping poses, decay their scores (mmpose ``soft_oks_nms``).

    Repeatedly keep the best-scoring remaining pose and decay every other remaining score by its OKS
    ``o`` to it: ``gaussian`` multiplies by ``exp(-o^2 / thr)``, ``linear`` by ``1 - o`` where ``o >= thr``.
    Stops after ``max_dets`` poses.

    Returns:
        (kept indices in selection order, their decayed scores). mmpose keeps only the indices.
    """
    if method not in ("gaussian", "linear"):
        raise ValueError(f"unknown soft-NMS method {method!r}; choose 'gaussian' or 'linear'")
    keypoints = np.asarray(keypoints, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    order = _score_order(scores)
    current = np.asarray(scores, dtype=np.float64)[order]
    keep, kept_scores = [], []
    while len(order) and len(keep) < max_dets:
        best, rest = order[0], order[1:]
        keep.append(best)
        kept_scores.append(current[0])
        overlap = pose_oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas, vis_thr)
        if method == "gaussian":
            current = current[1:] * np.exp(-(overlap**2) / thr)
        else:
            current = np.where(overlap >= thr, current[1:] * (1 - overlap), current[1:])
        resort = np.argsort(-current, kind="stable")
        order, current = rest[resort], current[resort]
    return np.array(keep, dtype=np.int64), np.array(kept_scores, dtype=np.float64)
