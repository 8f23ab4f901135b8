"""The AID droppers' sampling and rasterising functions: hand-computed masks and sampled distributions."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.aid.masks import (
    DropMask,
    boxes_mask,
    candidate_keypoints,
    cutout_mask,
    dropped_keypoints,
    gridmask_mask,
    has_mask,
    keypoint_pixels,
    sample_cutout_holes,
    sample_erasing_box,
    sample_gridmask,
    sample_has_cells,
)

N = 20_000  # draws per distribution test: standard errors well below the tolerances used


def test_keypoint_pixels_rounds_to_the_pixel_whose_cell_holds_the_point():
    points = np.array([[1.5, 0.49], [-0.5, -0.5], [-0.51, 0.0], [4.49, 2.49], [np.nan, 1.0], [np.inf, 0.0]])
    rows, cols, inside = keypoint_pixels(points, 3, 5)
    assert inside.tolist() == [True, True, False, True, False, False]
    assert rows[inside].tolist() == [0, 0, 2]
    assert cols[inside].tolist() == [2, 0, 4]


def test_cutout_ellipse_mask_by_hand():
    # centre (x=2, y=1), semi-axes 2 (x) and 1 (y) on a 3×5 image
    mask = cutout_mask(3, 5, np.array([[2.0, 1.0, 2.0, 1.0]]), "ellipse").full()
    expected = [[0, 0, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]]
    np.testing.assert_array_equal(mask, np.array(expected, dtype=bool))


def test_cutout_rectangle_mask_is_clipped_to_the_image():
    drop = cutout_mask(4, 6, np.array([[5.2, -1.0, 1.5, 2.0]]), "rectangle")
    # columns ceil(3.7)=4 .. floor(6.7)=6 → 4, 5; rows ceil(-3)=-3 .. floor(1) = 1 → 0, 1
    assert (drop.top, drop.left, drop.local.shape) == (0, 4, (2, 2))
    expected = np.zeros((4, 6), dtype=bool)
    expected[0:2, 4:6] = True
    np.testing.assert_array_equal(drop.full(), expected)


def test_cutout_hole_outside_the_image_or_larger_than_it():
    assert not cutout_mask(3, 5, np.array([[50.0, 50.0, 3.0, 3.0]]), "ellipse").full().any()
    assert cutout_mask(3, 5, np.array([[2.0, 1.0, 100.0, 100.0]]), "ellipse").full().all()


def test_cutout_union_of_holes():
    holes = np.array([[0.0, 0.0, 0.5, 0.5], [4.0, 2.0, 0.5, 0.5]])
    drop = cutout_mask(3, 5, holes, "ellipse")
    assert drop.full().sum() == 2 and drop.full()[0, 0] and drop.full()[2, 4]


def test_ellipse_area_is_pi_a_b():
    mask = cutout_mask(300, 300, np.array([[150.3, 149.6, 60.0, 35.0]]), "ellipse").full()
    assert mask.sum() == pytest.approx(np.pi * 60 * 35, rel=0.01)


def test_cutout_mask_equals_a_direct_pixel_centre_test_for_random_holes():
    """The windowed float32 raster against ((j − cx)/ax)² + ((i − cy)/ay)² ≤ 1 on the whole image."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:40, 0:30]
    for _ in range(200):
        holes = np.column_stack([rng.uniform(-10, 40, (3, 2)), rng.uniform(0.3, 15, (3, 2))])
        holes = holes[: rng.integers(1, 4)]
        inside = [((cols - cx) / ax) ** 2 + ((rows - cy) / ay) ** 2 for cx, cy, ax, ay in holes]
        distance = np.min(inside, axis=0)
        clear = np.abs(distance - 1) > 1e-4  # float32 and float64 may disagree only on the boundary
        mask = cutout_mask(40, 30, holes, "ellipse").full()
        np.testing.assert_array_equal(mask[clear], (distance <= 1)[clear])


def test_dropped_keypoints_agree_with_keypoint_pixels():
    rng = np.random.default_rng(4)
    drop = DropMask(rng.random((6, 7)) < 0.5, top=3, left=2, height=12, width=11)
    points = np.concatenate([rng.uniform(-2, 13, (300, 2)), [[np.inf, 4.0], [5.0, -np.inf]]])
    rows, cols, inside = keypoint_pixels(points, 12, 11)
    np.testing.assert_array_equal(dropped_keypoints(drop, points), inside & drop.full()[rows, cols])


def test_dropped_keypoints_reads_the_mask_under_each_keypoint():
    drop = DropMask(np.array([[True, False], [False, True]]), top=1, left=2, height=4, width=5)
    points = np.array([[2.0, 1.0], [3.0, 1.0], [3.4, 2.4], [0.0, 0.0], [9.0, 9.0], [np.nan, 1.0]])
    assert dropped_keypoints(drop, points).tolist() == [True, False, True, False, False, False]
    assert dropped_keypoints(drop, np.zeros((0, 2))).shape == (0,)


def test_candidate_keypoints_are_inside_finite_and_labelled():
    points = np.array([[1.0, 1.0], [-3.0, 1.0], [np.nan, 2.0], [2.0, 2.0], [3.0, 0.0]])
    np.testing.assert_array_equal(candidate_keypoints(points, 3, 5), points[[0, 3, 4]])
    visibility = np.array([2, 2, 2, 0, 1])
    np.testing.assert_array_equal(candidate_keypoints(points, 3, 5, visibility), points[[0, 4]])
    with pytest.raises(ValueError, match="one COCO visibility value per keypoint"):
        candidate_keypoints(points, 3, 5, visibility[:2])


def test_cutout_sampling_distribution_matches_the_official_aid_code():
    rng = np.random.default_rng(0)
    height, width = 256, 192
    holes = np.concatenate(
        [sample_cutout_holes(rng, height, width, (1, 3), (0.2, 0.4)) for _ in range(N // 4)], axis=0
    )
    counts = np.array([len(sample_cutout_holes(rng, height, width, (1, 3), (0.2, 0.4))) for _ in range(3000)])
    np.testing.assert_allclose(np.bincount(counts, minlength=4)[1:] / len(counts), 1 / 3, atol=0.03)
    axes = holes[:, 2:] / width  # each semi-axis U(0.2, 0.4) × width, independently
    assert axes.min() >= 0.2 and axes.max() <= 0.4
    np.testing.assert_allclose(axes.mean(axis=0), 0.3, atol=0.003)
    np.testing.assert_allclose(axes.std(axis=0), 0.2 / np.sqrt(12), atol=0.003)
    assert abs(np.corrcoef(axes[:, 0], axes[:, 1])[0, 1]) < 0.03
    centres = holes[:, :2]  # uniform over [−0.5, W − 0.5) × [−0.5, H − 0.5)
    assert (centres >= -0.5).all() and (centres < (width - 0.5, height - 0.5)).all()
    np.testing.assert_allclose(centres.mean(axis=0), ((width - 1) / 2, (height - 1) / 2), atol=2.0)
    np.testing.assert_allclose(centres.std(axis=0), np.array([width, height]) / np.sqrt(12), rtol=0.03)


def test_keypoint_targeted_holes_centre_on_candidates_with_gaussian_offset():
    rng = np.random.default_rng(1)
    candidates = np.array([[40.0, 50.0], [150.0, 200.0]])
    holes = np.concatenate(
        [sample_cutout_holes(rng, 256, 192, (1, 1), (0.2, 0.4), candidates, 0.1) for _ in range(N // 4)]
    )
    near_first = np.linalg.norm(holes[:, :2] - candidates[0], axis=1) < 80
    assert near_first.mean() == pytest.approx(0.5, abs=0.03)
    offsets = np.where(near_first[:, None], holes[:, :2] - candidates[0], holes[:, :2] - candidates[1])
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.5)
    np.testing.assert_allclose(offsets.std(axis=0), 0.1 * 192, rtol=0.04)
    exact = sample_cutout_holes(rng, 256, 192, (2, 2), (0.2, 0.4), candidates[:1], 0.0)
    np.testing.assert_array_equal(exact[:, :2], [[40.0, 50.0], [40.0, 50.0]])


def test_erasing_box_by_hand_and_its_distribution():
    rng = np.random.default_rng(2)
    # area 1/4 of a 4×4 image at aspect 1: a 2×2 box anywhere in the 3×3 positions
    boxes = np.concatenate([sample_erasing_box(rng, 4, 4, (0.25, 0.25), (1.0, 1.0), 100) for _ in range(900)])
    assert ((boxes[:, 2:] - boxes[:, :2]) == 2).all()
    np.testing.assert_allclose(np.bincount(boxes[:, 0], minlength=3) / 900, 1 / 3, atol=0.06)
    assert len(sample_erasing_box(rng, 4, 4, (0.9, 0.9), (3.0, 3.0), 100)) == 0  # 6×2 never fits
    height, width = 256, 192
    boxes = np.concatenate(
        [sample_erasing_box(rng, height, width, (0.02, 0.4), (0.3, 1 / 0.3), 100) for _ in range(N // 2)]
    )
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    area = h * w / (height * width)
    assert area.min() > 0.015 and area.max() < 0.41
    assert area.mean() == pytest.approx(0.21, abs=0.01)  # nearly every first attempt fits on this image
    aspect = h / w
    assert aspect.min() > 0.27 and aspect.max() < 3.7
    assert aspect.mean() == pytest.approx((0.3 + 1 / 0.3) / 2, abs=0.05)  # uniform, as Zhong et al.
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(centres.mean(axis=0), (width / 2, height / 2), atol=2.0)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= (width, height)).all()


def test_boxes_mask_by_hand():
    mask = boxes_mask(3, 5, np.array([[1, 0, 3, 2], [4, 2, 9, 9]])).full()
    expected = [[0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 1]]
    np.testing.assert_array_equal(mask, np.array(expected, dtype=bool))
    assert not boxes_mask(3, 5, np.zeros((0, 4))).full().any()


def test_has_mask_by_hand():
    hidden = np.array([[True, False, True], [False, True, False]])
    mask = has_mask(3, 5, 2, hidden).full()
    expected = [[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 1, 0]]
    np.testing.assert_array_equal(mask, np.array(expected, dtype=bool))
    assert not has_mask(3, 5, 0, np.zeros((0, 0), dtype=bool)).full().any()


def test_has_cells_tile_the_whole_image_and_grid_sizes_are_uniform():
    rng = np.random.default_rng(3)
    height, width = 256, 192  # portrait crop
    sizes, hidden_share, bottom_hidden = [], [], []
    for _ in range(4000):
        g, hidden = sample_has_cells(rng, height, width, (0, 16, 32, 44), 0.5)
        sizes.append(g)
        if g:
            assert hidden.shape == (-(-height // g), -(-width // g))
            mask = has_mask(height, width, g, hidden).full()
            hidden_share.append(hidden.mean())
            bottom_hidden.append(mask[width:].mean())  # the rows below the top W×W square
    np.testing.assert_allclose(np.unique(sizes, return_counts=True)[1] / len(sizes), 0.25, atol=0.025)
    assert np.mean(hidden_share) == pytest.approx(0.5, abs=0.01)
    assert np.mean(bottom_hidden) == pytest.approx(0.5, abs=0.02)
    g, hidden = sample_has_cells(rng, height, width, (44,), 1.0)
    assert has_mask(height, width, g, hidden).full().all()


def test_gridmask_by_hand_both_modes():
    bands = gridmask_mask(4, 4, d=4, band=2, offset_y=0, offset_x=1, angle=0.0, mode=0).full()
    expected = [[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0], [0, 1, 1, 0]]
    np.testing.assert_array_equal(bands, np.array(expected, dtype=bool))
    squares = gridmask_mask(4, 4, d=4, band=2, offset_y=0, offset_x=1, angle=0.0, mode=1).full()
    np.testing.assert_array_equal(squares, ~bands)


def test_gridmask_sampling_and_dropped_share():
    rng = np.random.default_rng(4)
    draws = [sample_gridmask(rng, (10, 20), 0.5, 0.0) for _ in range(N // 4)]
    periods = np.array([d for d, *_ in draws])
    assert periods.min() == 10 and periods.max() == 20
    np.testing.assert_allclose(np.bincount(periods)[10:] / len(periods), 1 / 11, atol=0.02)
    assert all(band == int(d * 0.5 + 0.5) and 0 <= oy < d and 0 <= ox < d for d, band, oy, ox, _ in draws)
    offsets = np.array([(oy + 0.5) / d for d, _, oy, _, _ in draws])  # uniform over the d positions
    assert offsets.mean() == pytest.approx(0.5, abs=0.02)
    angles = np.array([sample_gridmask(rng, (10, 20), 0.5, 360.0)[4] for _ in range(2000)])
    assert angles.min() >= 0 and angles.max() < 360 and angles.mean() == pytest.approx(180, abs=10)
    # mode 1 drops (1 − r)² of the image, mode 0 the rest; with or without rotation
    for angle in (0.0, 30.0):
        squares = gridmask_mask(400, 400, 40, 20, 7, 13, angle, mode=1).full()
        assert squares.mean() == pytest.approx(0.25, abs=0.01)
        bands = gridmask_mask(400, 400, 40, 20, 7, 13, angle, mode=0).full()
        np.testing.assert_array_equal(bands, ~squares)


def test_tiny_and_empty_images():
    rng = np.random.default_rng(5)
    for height, width in ((3, 5), (1, 1), (0, 4)):
        holes = sample_cutout_holes(rng, height, width, (1, 3), (0.2, 0.4))
        assert cutout_mask(height, width, holes, "ellipse").full().shape == (height, width)
        box = sample_erasing_box(rng, height, width, (0.02, 0.4), (0.3, 1 / 0.3), 100)
        assert boxes_mask(height, width, box).full().shape == (height, width)
        g, hidden = sample_has_cells(rng, height, width, (16,), 0.5)
        assert has_mask(height, width, g, hidden).full().shape == (height, width)
        d, band, oy, ox, angle = sample_gridmask(rng, (96, 224), 0.5, 45.0)
        assert gridmask_mask(height, width, d, band, oy, ox, angle, 1).full().shape == (height, width)
