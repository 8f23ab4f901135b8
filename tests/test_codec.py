"""UDP heatmap codec: encoding, DARK-UDP decoding, mapping back to the image, flip-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aidpose.codecs.udp_heatmap import (
    decode_to_image,
    decode_udp_heatmaps,
    encode_udp_heatmaps,
    flip_back_heatmaps,
    heatmap_to_input,
)
from aidpose.data.keypoints import COCO
from aidpose.geometry.affine import apply_affine, invert_affine, udp_warp_matrix


@pytest.mark.parametrize(
    ("input_size", "heatmap_size", "sigma", "kernel"),
    [((192, 256), (48, 64), 2.0, 11), ((288, 384), (72, 96), 3.0, 17)],
)
def test_round_trip_is_sub_pixel_exact(input_size, heatmap_size, sigma, kernel) -> None:
    """Random sub-pixel joints (at least 3σ from the border) come back within 0.05 input pixels."""
    rng = np.random.default_rng(0)
    w, h = heatmap_size
    margin = 3 * sigma
    hm_xy = np.stack([rng.uniform(margin, w - 1 - margin, 170), rng.uniform(margin, h - 1 - margin, 170)], 1)
    joints = heatmap_to_input(hm_xy, input_size, heatmap_size).reshape(10, 17, 2)
    heatmaps = np.stack(
        [encode_udp_heatmaps(j, np.ones(17), input_size, heatmap_size, sigma)[0] for j in joints]
    )
    coords, maxvals = decode_udp_heatmaps(heatmaps, kernel)
    error = np.abs(heatmap_to_input(coords, input_size, heatmap_size) - joints)
    assert error.max() < 0.05
    assert maxvals.min() > 0.85  # the peak pixel is at most 0.5 px (per axis) from the centre


def test_encode_hand_computed_values() -> None:
    # stride = (192 - 1) / (48 - 1) in x and (256 - 1) / (64 - 1) in y; joint at heatmap pixel (20, 10)
    joint = np.array([[20 * 191 / 47, 10 * 255 / 63]])
    heatmaps, weights = encode_udp_heatmaps(joint, np.ones(1), (192, 256), (48, 64), sigma=2.0)
    hm = heatmaps[0]
    assert heatmaps.shape == (1, 64, 48) and heatmaps.dtype == np.float32 and weights.dtype == np.float32
    assert hm[10, 20] == pytest.approx(1.0)
    assert hm[10, 21] == pytest.approx(np.exp(-1 / 8))
    assert hm[11, 21] == pytest.approx(np.exp(-2 / 8))
    assert hm[10, 26] == pytest.approx(np.exp(-36 / 8))  # 3σ: last pixel of the window
    assert hm[10, 27] == 0.0 and hm[17, 20] == 0.0  # outside the window
    assert np.count_nonzero(hm) == 13 * 13


def test_encode_sub_pixel_centre() -> None:
    heatmaps, _ = encode_udp_heatmaps(
        np.array([[5.3 * 191 / 47, 7.8 * 255 / 63]]), np.ones(1), (192, 256), (48, 64), 2
    )
    assert heatmaps[0, 8, 5] == pytest.approx(np.exp(-(0.3**2 + 0.2**2) / 8), rel=1e-5)
    assert heatmaps[0, 7, 6] == pytest.approx(np.exp(-(0.7**2 + 0.8**2) / 8), rel=1e-5)


def test_target_weights() -> None:
    """Weight < 0.5 → 0; window outside the heatmap (mmpose's test) → 0; labelled joints inside → 1."""
    sx, sy = 191 / 47, 255 / 63
    joints = np.array(
        [
            [10 * sx, 10 * sy],  # inside, weight 1
            [10 * sx, 10 * sy],  # inside, weight 0 (v = 0)
            [-6.6 * sx, 10 * sy],  # centre trunc(-6.1) = -6: window reaches column 0
            [-8.6 * sx, 10 * sy],  # centre -8: window ends before column 0
            [10 * sx, 70.6 * sy],  # window starts at row 65 >= 64
        ]
    )
    heatmaps, weights = encode_udp_heatmaps(joints, np.array([1, 0, 1, 1, 1]), (192, 256), (48, 64), 2.0)
    assert weights.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert heatmaps[1].max() == 0.0 and heatmaps[3].max() == 0.0 and heatmaps[4].max() == 0.0
    assert heatmaps[2, 10, 0] == pytest.approx(np.exp(-(6.6**2) / 8), rel=1e-5)


def test_decode_hand_built_heatmaps() -> None:
    h, w = 64, 48
    ys, xs = np.mgrid[0:h, 0:w]
    gaussian = np.exp(-((xs - 17.3) ** 2 + (ys - 40.6) ** 2) / (2 * 2.0**2))
    delta = np.zeros((h, w))
    delta[12, 30] = 0.7
    heatmaps = np.stack([gaussian, delta, np.zeros((h, w))])[None].astype(np.float32)
    coords, maxvals = decode_udp_heatmaps(heatmaps, 11)
    assert coords.shape == (1, 3, 2) and maxvals.shape == (1, 3)
    np.testing.assert_allclose(coords[0, 0], [17.3, 40.6], atol=0.01)
    np.testing.assert_allclose(coords[0, 1], [30.0, 12.0], atol=1e-4)  # symmetric peak: no offset
    np.testing.assert_allclose(coords[0, 2], [-1.0, -1.0])  # no positive response
    np.testing.assert_allclose(maxvals[0], [gaussian.max(), 0.7, 0.0], rtol=1e-6)
    torch_coords, _ = decode_udp_heatmaps(torch.from_numpy(heatmaps), 11)
    np.testing.assert_array_equal(torch_coords, coords)


def test_decode_to_image_inverts_the_whole_chain() -> None:
    input_size, heatmap_size = (192, 256), (48, 64)
    rng = np.random.default_rng(5)
    image_xy = rng.uniform([265, 175], [315, 225], (4, 17, 2))
    centers, scales, rotations = (
        rng.uniform([285, 195], [295, 205], (4, 2)),
        rng.uniform(220, 260, (4, 2)),
        [0, 30, -60, 90],
    )
    mats = [udp_warp_matrix(c, s, r, input_size) for c, s, r in zip(centers, scales, rotations, strict=True)]
    heatmaps = np.stack(
        [
            encode_udp_heatmaps(apply_affine(p, m), np.ones(17), input_size, heatmap_size, 2.0)[0]
            for p, m in zip(image_xy, mats, strict=True)
        ]
    )
    out = decode_to_image(heatmaps, invert_affine(np.stack(mats)), input_size, heatmap_size, 11)
    assert out.shape == (4, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., :2], image_xy, atol=0.05)
    assert (out[..., 2] > 0.85).all()


def test_flip_back_hand_built() -> None:
    heatmaps = np.zeros((2, 17, 8, 6), dtype=np.float32)
    heatmaps[1, 1, 5, 3] = 1.0  # left eye at x = 3 in the mirrored crop
    heatmaps[1, 0, 2, 0] = 0.5  # nose at x = 0
    back = flip_back_heatmaps(heatmaps, COCO.flip_index)
    assert back[1, 2, 5, 2] == 1.0 and back[1, 0, 2, 5] == 0.5  # right eye at x = 6 - 1 - 3; nose mirrored
    assert back.sum() == heatmaps.sum()
    back_t = flip_back_heatmaps(torch.from_numpy(heatmaps), torch.as_tensor(COCO.flip_index))
    assert isinstance(back_t, torch.Tensor)
    np.testing.assert_array_equal(back_t.numpy(), back)


def test_flip_back_of_mirrored_joints_equals_the_original_encoding() -> None:
    """UDP: mirroring input x → (w - 1) - x mirrors heatmap columns exactly (no one-pixel shift)."""
    input_size, heatmap_size = (192, 256), (48, 64)
    joints = np.random.default_rng(6).uniform([5, 5], [186, 250], (17, 2))
    mirrored = joints.copy()
    mirrored[:, 0] = (input_size[0] - 1) - joints[:, 0]
    mirrored = mirrored[COCO.flip_index]
    original, _ = encode_udp_heatmaps(joints, np.ones(17), input_size, heatmap_size, 2.0)
    flipped, _ = encode_udp_heatmaps(mirrored, np.ones(17), input_size, heatmap_size, 2.0)
    np.testing.assert_allclose(flip_back_heatmaps(flipped[None], COCO.flip_index)[0], original, atol=1e-6)
