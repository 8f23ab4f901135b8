"""Top-down augmentation: clipped scale/rotation draws, HRNet half-body boxes, parameter sampling."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.data.keypoints import COCO
from aidpose.geometry.augment import (
    HALF_BODY_PADDING,
    TopDownAugmentation,
    half_body_box,
    sample_rotation,
    sample_scale_factor,
)

UPPER = COCO.upper_body_ids  # 0..10 (head and arms); 11..16 are hips, knees and ankles


def _pose(labelled: list[int]) -> np.ndarray:
    """COCO pose with joint k at (10 + 3k, 20 + 5k), labelled (v=2) only for the given joints."""
    k = np.arange(17, dtype=np.float32)
    keypoints = np.stack([10 + 3 * k, 20 + 5 * k, np.zeros(17)], axis=1).astype(np.float32)
    keypoints[labelled, 2] = 2
    return keypoints


def test_scale_factor_is_clipped_to_one_plus_minus_sigma() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([sample_scale_factor(rng, 0.35) for _ in range(2000)])
    assert draws.min() == pytest.approx(0.65) and draws.max() == pytest.approx(1.35)
    assert 0.2 < np.mean((draws == draws.min()) | (draws == draws.max())) < 0.45  # P(|z| > 1) ≈ 0.32
    assert abs(draws.mean() - 1.0) < 0.02


def test_rotation_is_clipped_and_applied_with_its_probability() -> None:
    rng = np.random.default_rng(1)
    draws = np.array([sample_rotation(rng, 45.0, 90.0, 0.6) for _ in range(4000)])
    assert np.abs(draws).max() == pytest.approx(90.0)  # |z| > 2 happens in ~5% of 2400 draws
    assert abs(np.mean(draws == 0.0) - 0.4) < 0.03
    assert all(sample_rotation(rng, 45.0, 90.0, 0.0) == 0.0 for _ in range(50))


def test_half_body_upper_box_hand_computed() -> None:
    keypoints = _pose([0, 5, 6, 9, 13, 15])  # upper: 0, 5, 6, 9; lower: 13, 15
    center, scale = half_body_box(keypoints, UPPER, prefer_upper=True, aspect_ratio=0.75)
    # upper joints x = 10, 25, 28, 37; y = 20, 45, 50, 65 → mean (25, 45), extent 27 × 45
    np.testing.assert_allclose(center, [25.0, 45.0])
    np.testing.assert_allclose(scale, np.array([45.0 * 0.75, 45.0]) * HALF_BODY_PADDING)


def test_half_body_falls_back_to_the_half_with_enough_joints() -> None:
    keypoints = _pose([0, 11, 12, 14, 16])  # upper has 1 joint, lower 4
    center, scale = half_body_box(keypoints, UPPER, prefer_upper=True, aspect_ratio=0.75)
    lower = keypoints[[11, 12, 14, 16], :2]
    np.testing.assert_allclose(center, lower.mean(axis=0))
    # extent x 15 and y 25 → width grows to 0.75 · 25
    np.testing.assert_allclose(scale, np.array([0.75 * 25.0, 25.0]) * HALF_BODY_PADDING)
    # lower preferred and available
    center, _ = half_body_box(_pose([0, 1, 2, 11, 12, 13]), UPPER, prefer_upper=False, aspect_ratio=0.75)
    np.testing.assert_allclose(center, _pose([])[[11, 12, 13], :2].mean(axis=0))


def test_half_body_needs_two_distinct_joints() -> None:
    assert half_body_box(_pose([3]), UPPER, prefer_upper=True, aspect_ratio=0.75) is None
    same_place = _pose([1, 2, 3])
    same_place[:, :2] = 7.0
    assert half_body_box(same_place, UPPER, prefer_upper=True, aspect_ratio=0.75) is None


def test_half_body_only_with_more_than_min_keypoints() -> None:
    aug = TopDownAugmentation(half_body_prob=1.0, half_body_min_keypoints=8)
    center, scale = np.array([50.0, 60.0]), np.array([120.0, 160.0])
    rng = np.random.default_rng(2)
    eight = _pose(list(range(8)))
    nine = _pose(list(range(9)))
    assert not any(aug.sample(rng, eight, center, scale, 0.75, UPPER).half_body for _ in range(20))
    assert all(aug.sample(rng, nine, center, scale, 0.75, UPPER).half_body for _ in range(20))


def test_sample_ranges_and_reproducibility() -> None:
    aug = TopDownAugmentation()
    keypoints = _pose(list(range(17)))
    center, scale = np.array([50.0, 60.0]), np.array([120.0, 160.0])
    a = [aug.sample(np.random.default_rng(3), keypoints, center, scale, 0.75, UPPER) for _ in range(2)]
    assert a[0].rotation == a[1].rotation and a[0].flip == a[1].flip
    np.testing.assert_array_equal(a[0].scale, a[1].scale)
    rng = np.random.default_rng(4)
    params = [aug.sample(rng, _pose([0]), center, scale, 0.75, UPPER) for _ in range(1000)]
    ratios = np.array([p.scale / scale for p in params])
    assert (
        np.allclose(ratios[:, 0], ratios[:, 1])
        and ratios.min() >= 0.65 - 1e-9
        and ratios.max() <= 1.35 + 1e-9
    )
    assert max(abs(p.rotation) for p in params) <= 90.0
    assert 0.45 < np.mean([p.flip for p in params]) < 0.55
    assert not any(p.half_body for p in params)


@pytest.mark.parametrize(
    ("field", "value"),
    [("flip_prob", 1.5), ("rotation_prob", -0.1), ("scale_sigma", 1.0), ("rotation_max", -1)],
)
def test_invalid_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TopDownAugmentation(**{field: value})
