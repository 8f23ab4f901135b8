"""UDP affine geometry: boxes → centre/scale, warp matrices, inverses, clipping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aidpose.geometry.affine import (
    apply_affine,
    box_to_center_scale,
    clip_boxes,
    fix_aspect_ratio,
    hwc_to_chw,
    invert_affine,
    item_inverse_affine,
    udp_warp_matrix,
    warp_to_rgb,
)

OUT = (192, 256)  # (width, height)


def test_box_to_center_scale_tall_and_wide_boxes() -> None:
    center, scale = box_to_center_scale(np.array([10.0, 20.0, 30.0, 80.0]), aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(center, [25.0, 60.0])
    np.testing.assert_allclose(scale, [60.0 * 1.25, 80.0 * 1.25])  # width grown to 0.75 · 80

    center, scale = box_to_center_scale(np.array([[0.0, 0.0, 100.0, 40.0]]), aspect_ratio=0.75, padding=1.0)
    np.testing.assert_allclose(center, [[50.0, 20.0]])
    np.testing.assert_allclose(scale, [[100.0, 100.0 / 0.75]])  # height grown to 100 / 0.75


def test_fix_aspect_ratio_keeps_matching_boxes() -> None:
    np.testing.assert_allclose(fix_aspect_ratio(np.array([30.0, 40.0]), 0.75), [30.0, 40.0])


def test_warp_matrix_hand_computed() -> None:
    # scale = output - 1 → unit zoom; centre (100, 50) → ((192 - 1) / 2, (256 - 1) / 2) = (95.5, 127.5)
    m = udp_warp_matrix(np.array([100.0, 50.0]), np.array([191.0, 255.0]), 0.0, OUT)
    np.testing.assert_allclose(m, [[1.0, 0.0, -4.5], [0.0, 1.0, 77.5]], atol=1e-6)
    assert m.dtype == np.float32 and m.shape == (2, 3)


def test_warp_matrix_maps_centre_and_box_corners() -> None:
    center, scale = np.array([320.0, 200.0]), np.array([150.0, 200.0])
    m = udp_warp_matrix(center, scale, 0.0, OUT)
    corners = np.array([center - scale / 2, center + scale / 2, center])
    np.testing.assert_allclose(
        apply_affine(corners, m), [[0.0, 0.0], [191.0, 255.0], [95.5, 127.5]], atol=1e-3
    )


def test_warp_matrix_rotation_by_90_degrees() -> None:
    m = udp_warp_matrix(np.array([0.0, 0.0]), np.array([191.0, 255.0]), 90.0, OUT)
    # x' = cos·x − sin·y, y' = sin·x + cos·y around the centre: (1, 0) → (0, 1), (0, 1) → (−1, 0)
    out = apply_affine(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), m)
    np.testing.assert_allclose(out, [[95.5, 128.5], [94.5, 127.5], [95.5, 127.5]], atol=1e-5)
    # the same rotation as cv2's (whose positive angle turns the other way in image coordinates)
    cv = cv2.getRotationMatrix2D((0.0, 0.0), -90.0, 1.0)
    np.testing.assert_allclose(m[:, :2], cv[:, :2], atol=1e-6)


def test_flip_is_a_mirror_in_output_space() -> None:
    center, scale = np.array([300.0, 180.0]), np.array([120.0, 160.0])
    pts = np.random.default_rng(0).uniform(100, 400, (20, 2))
    plain = apply_affine(pts, udp_warp_matrix(center, scale, 25.0, OUT))
    flipped = apply_affine(pts, udp_warp_matrix(center, scale, 25.0, OUT, flip=True))
    np.testing.assert_allclose(flipped[:, 0], (OUT[0] - 1) - plain[:, 0], atol=1e-3)
    np.testing.assert_allclose(flipped[:, 1], plain[:, 1], atol=1e-3)


def test_invert_affine_round_trip_and_batches() -> None:
    rng = np.random.default_rng(1)
    mats = np.stack(
        [
            udp_warp_matrix(rng.uniform(0, 500, 2), rng.uniform(50, 300, 2), r, OUT, f)
            for r, f in [(0, 0), (33, 1)]
        ]
    )
    pts = rng.uniform(0, 500, (2, 5, 2))
    back = apply_affine(apply_affine(pts, mats), invert_affine(mats))
    np.testing.assert_allclose(back, pts, atol=1e-3)
    np.testing.assert_allclose(invert_affine(invert_affine(mats[1])), mats[1], rtol=1e-6, atol=1e-5)


def test_item_inverse_affine_is_the_float32_of_the_inverse() -> None:
    """The items' cheap inverse: the same float32 values as numpy's float64 inverse, cast (random UDP warps with
    and without rotation and flip)."""
    rng = np.random.default_rng(7)
    for n in range(2000):
        matrix = udp_warp_matrix(
            rng.uniform(0, 640, 2), rng.uniform(20, 900, 2), rng.uniform(-90, 90) * (n % 2), OUT, n % 3 == 0
        )
        inverse = item_inverse_affine(matrix)
        assert inverse.dtype == np.float32
        np.testing.assert_array_equal(inverse, invert_affine(matrix).astype(np.float32))


def test_clip_boxes_hand_computed() -> None:
    boxes = np.array([[-10.0, 5.0, 30.0, 100.0], [120.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 0.0]])
    clipped, valid = clip_boxes(boxes, np.array([[100, 50]] * 3))
    np.testing.assert_allclose(clipped[0], [0.0, 5.0, 20.0, 44.0])  # x2 = 20, y2 clipped to 49
    assert valid.tolist() == [True, False, False]  # outside the image; zero height


@pytest.mark.parametrize("rotation", [-70.0, 0.0, 45.0])
def test_warp_matrix_agrees_with_cv2_on_an_image(rotation: float) -> None:
    """Warping a one-pixel dot lands it where apply_affine says."""
    image = np.zeros((200, 300), dtype=np.float32)
    image[120, 170] = 1.0
    m = udp_warp_matrix(np.array([160.0, 110.0]), np.array([95.5, 127.5]), rotation, OUT)
    crop = cv2.warpAffine(image, m, OUT, flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(crop > 0)
    weights = crop[ys, xs]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    np.testing.assert_allclose(centroid, apply_affine(np.array([[170.0, 120.0]]), m)[0], atol=0.05)


def test_warp_to_rgb_gives_the_pixels_of_warping_the_rgba_image(coco_mini) -> None:
    """The BGR image warped directly: the same pixels as cv2's 4-channel warp of it converted to RGBA (the
    earlier implementation), for rotated, flipped, up- and downscaling warps of a fixture photo."""
    image = cv2.imread(str(coco_mini / "000000000785.jpg"))
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
    rng = np.random.default_rng(0)
    for _ in range(40):
        center = rng.uniform(0, image.shape[1::-1])
        scale = rng.uniform(30, 1500, size=2)
        matrix = udp_warp_matrix(center, scale, rng.uniform(-180, 180), OUT, flip=bool(rng.random() < 0.5))
        expected = cv2.cvtColor(cv2.warpAffine(rgba, matrix, OUT, flags=cv2.INTER_LINEAR), cv2.COLOR_RGBA2RGB)
        crop = warp_to_rgb(image, matrix, OUT)
        assert crop.flags.c_contiguous and crop.shape == (OUT[1], OUT[0], 3)
        np.testing.assert_array_equal(crop, expected)


def test_hwc_to_chw_is_a_contiguous_copy_of_the_planes():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    planes = hwc_to_chw(image)
    assert planes.shape == (3, 4, 5) and planes.flags.c_contiguous and planes.dtype == np.uint8
    assert planes[2, 1, 3] == image[1, 3, 2] == 1 * 15 + 3 * 3 + 2
    np.testing.assert_array_equal(planes, image.transpose(2, 0, 1))
    planes[0] = 0
    assert image[..., 0].any()  # a copy, not a view
