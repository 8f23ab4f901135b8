"""OKS-NMS and soft OKS-NMS on hand-built overlapping poses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aidpose.data.keypoints import COCO
from aidpose.evaluation import oks_nms, soft_oks_nms
from aidpose.evaluation.nms import pose_oks

SIGMAS = COCO.sigmas


def poses(*offsets: float) -> np.ndarray:
    """(N, 17, 3) copies of one pose shifted right by the given offsets (keypoint scores 0.9)."""
    base = np.c_[np.linspace(0, 40, 17), np.linspace(0, 80, 17), np.full(17, 0.9)]
    out = np.repeat(base[None], len(offsets), axis=0)
    out[:, :, 0] += np.array(offsets)[:, None]
    return out


def test_pose_oks_by_hand() -> None:
    kpts = poses(0.0, 2.0)
    oks = pose_oks(kpts[0], kpts[1:], 400.0, np.array([200.0]), SIGMAS)
    expected = np.exp(-4 / (2 * SIGMAS) ** 2 / (300 + np.spacing(1)) / 2).mean()  # mean area (400+200)/2
    assert oks[0] == pytest.approx(expected, rel=1e-12)


def test_pose_oks_visibility_threshold() -> None:
    kpts = poses(0.0, 2.0, 0.0)
    kpts[1, 3:, 2] = 0.1  # only keypoints 0-2 confident in pose 1
    kpts[2, :, 2] = 0.1  # nothing confident in pose 2
    oks = pose_oks(kpts[0], kpts[1:], 400.0, np.array([400.0, 400.0]), SIGMAS, vis_thr=0.2)
    e = 4 / (2 * SIGMAS[:3]) ** 2 / (400 + np.spacing(1)) / 2
    assert oks[0] == pytest.approx(np.exp(-e).mean(), rel=1e-12)
    assert oks[1] == 0.0


def test_oks_nms_drops_near_duplicates_only() -> None:
    kpts = poses(0.0, 0.5, 300.0, 1.0)  # pose 1 and 3 duplicate pose 0; pose 2 is far away
    scores = np.array([0.7, 0.9, 0.8, 0.3])
    keep = oks_nms(kpts, scores, np.full(4, 3000.0), SIGMAS, thr=0.9)
    assert keep.tolist() == [1, 2]  # best first; 0 and 3 overlap 1 with OKS > 0.9
    assert oks_nms(kpts, scores, np.full(4, 3000.0), SIGMAS, thr=1.0).tolist() == [1, 2, 0, 3]


def test_oks_nms_threshold_is_exclusive_and_ties_keep_order() -> None:
    kpts = poses(0.0, 3.0)
    areas = np.full(2, 3000.0)
    overlap = pose_oks(kpts[0], kpts[1:], 3000.0, areas[1:], SIGMAS)[0]
    assert oks_nms(kpts, np.array([0.5, 0.5]), areas, SIGMAS, thr=overlap).tolist() == [
        0,
        1,
    ]  # OKS <= thr kept
    assert oks_nms(kpts, np.array([0.5, 0.5]), areas, SIGMAS, thr=overlap - 1e-9).tolist() == [0]


def test_soft_oks_nms_gaussian_decay_by_hand() -> None:
    kpts = poses(0.0, 3.0, 300.0)
    scores = np.array([0.9, 0.85, 0.8])
    areas = np.full(3, 3000.0)
    keep, kept_scores = soft_oks_nms(kpts, scores, areas, SIGMAS, thr=0.3)
    o = pose_oks(kpts[0], kpts[1:2], 3000.0, areas[1:2], SIGMAS)[0]
    decayed = 0.85 * math.exp(-(o**2) / 0.3)
    assert decayed < 0.8  # the duplicate falls behind the distinct far pose
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(kept_scores, [0.9, 0.8, decayed], rtol=1e-12)  # pose 2 barely decays (OKS ~0)


def test_soft_oks_nms_linear_and_max_dets() -> None:
    kpts = poses(0.0, 3.0, 300.0)
    areas = np.full(3, 3000.0)
    o = pose_oks(kpts[0], kpts[1:2], 3000.0, areas[1:2], SIGMAS)[0]
    keep, kept_scores = soft_oks_nms(
        kpts, np.array([0.9, 0.85, 0.1]), areas, SIGMAS, thr=0.3, method="linear"
    )
    assert keep.tolist() == [0, 1, 2]
    np.testing.assert_allclose(kept_scores[1], 0.85 * (1 - o), rtol=1e-12)
    keep, _ = soft_oks_nms(kpts, np.array([0.9, 0.85, 0.1]), areas, SIGMAS, max_dets=2)
    assert len(keep) == 2
    with pytest.raises(ValueError, match="unknown soft-NMS method"):
        soft_oks_nms(kpts, np.ones(3), areas, SIGMAS, method="box")


def test_empty_input() -> None:
    empty = np.zeros((0, 17, 3))
    assert oks_nms(empty, np.zeros(0), np.zeros(0), SIGMAS).tolist() == []
    keep, scores = soft_oks_nms(empty, np.zeros(0), np.zeros(0), SIGMAS)
    assert keep.tolist() == [] and scores.tolist() == []
