"""Dropped-keypoint statistics: the share of visible keypoints whose appearance a dropper removed."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.aid import Cutout, DroppedKeypointStats, dropped_keypoint_stats


def test_counts_by_hand():
    dropped = np.array([[True, False, True], [True, True, False]])
    visibility = np.array([[2, 2, 1], [2, 0, 2]])
    stats = dropped_keypoint_stats(dropped, visibility)
    assert stats.visible.tolist() == [2, 1, 1]
    assert stats.dropped.tolist() == [2, 0, 0]  # the dropped v=1 and v=0 keypoints do not count
    assert stats.fraction == pytest.approx(2 / 4)
    np.testing.assert_allclose(stats.per_joint, [1.0, 0.0, 0.0])
    labelled = dropped_keypoint_stats(dropped, visibility, min_visibility=1)
    assert labelled.visible.tolist() == [2, 1, 2] and labelled.dropped.tolist() == [2, 0, 1]


def test_accumulation_and_empty_joints():
    total = DroppedKeypointStats.empty(3)
    assert np.isnan(total.fraction) and np.isnan(total.per_joint).all()
    total = total + dropped_keypoint_stats(np.array([True, False, False]), np.array([2, 0, 0]))
    total = total + dropped_keypoint_stats(np.array([[False, True, False]]), np.array([[2, 2, 0]]))
    assert total.visible.tolist() == [2, 1, 0] and total.dropped.tolist() == [1, 1, 0]
    assert total.fraction == pytest.approx(2 / 3)
    np.testing.assert_allclose(total.per_joint[:2], [0.5, 1.0])
    assert np.isnan(total.per_joint[2])
    with pytest.raises(ValueError, match="cannot add stats of 3 and 2 keypoints"):
        total + DroppedKeypointStats.empty(2)
    with pytest.raises(ValueError, match="same"):
        dropped_keypoint_stats(np.zeros((2, 3), bool), np.zeros((2, 4)))


def test_stats_of_a_batch_equal_a_direct_pixel_check():
    rng = np.random.default_rng(0)
    cutout = Cutout(size_range=(0.3, 0.5))
    flags, visibility, by_pixel = [], [], []
    for _ in range(64):
        keypoints = rng.uniform(-0.5, 63.5, size=(17, 2))  # every pixel under a keypoint is inside
        vis = rng.choice([0, 1, 2], size=17, p=[0.2, 0.2, 0.6])
        image, dropped = cutout.drop(np.full((64, 64, 3), 255, np.uint8), keypoints, rng)
        cols, rows = np.floor(keypoints + 0.5).astype(int).T
        by_pixel.append((image[rows, cols] == 0).all(axis=1))
        flags.append(dropped)
        visibility.append(vis)
    stats = dropped_keypoint_stats(np.array(flags), np.array(visibility))
    visible = np.array(visibility) == 2
    assert stats.dropped.sum() == (np.array(by_pixel) & visible).sum() > 0
    assert stats.fraction == pytest.approx((np.array(by_pixel) & visible).sum() / visible.sum())
