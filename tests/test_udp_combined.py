"""UDP's combined (offset) target: encoding, decoding, flip-back and its loss, against hand-computed cases.

Which mmpose 1.x function each test mirrors:
- ``test_label_disc_and_offsets_hand_computed``, ``test_radius_and_invalid_joints``:
  ``mmpose.codecs.utils.generate_offset_heatmap`` as called by ``UDPHeatmap(heatmap_type="combined",
  radius_factor=0.0546875).encode`` (offsets written on the disc only, as the authors' UDP-Pose
  ``_udp_generate_target``; mmpose 1.x also fills them outside it, where the loss ignores them);
- ``test_decode_recovers_the_joint_exactly``, ``test_decode_picks_the_blurred_label_peak``,
  ``test_decode_to_image_and_errors``: ``UDPHeatmap.decode`` for ``heatmap_type="combined"`` (label maps blurred,
  argmax, plus radius × offset at the argmax), then ``keypoints / [W - 1, H - 1] * input_size`` and the inverse
  box transform (= aidpose's UDP ``heatmap_to_input`` and inverse affine);
- ``test_flip_back_round_trip``: ``mmpose.models.utils.tta.flip_heatmaps(flip_mode="udp_combined")``;
- ``test_loss_hand_computed``: ``mmpose.models.losses.CombinedTargetMSELoss(use_target_weight=True)``;
- ``test_codec_*``: the same functions behind the codec contract (``UDPHeatmap.encode``/``decode`` as
  ``TopdownPoseEstimator`` calls them, the flip test of ``HeatmapHead.predict`` with ``flip_mode="udp_combined"``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aidpose.codecs.udp_combined import (
    UDPCombinedCodec,
    blur_maps,
    combined_radius,
    decode_udp_combined,
    decode_udp_combined_to_image,
    encode_udp_combined,
    flip_back_combined,
)
from aidpose.data.keypoints import COCO
from aidpose.geometry.affine import apply_affine, invert_affine, udp_warp_matrix
from aidpose.models.combined_target_loss import CombinedTargetMSELoss, combined_target_mse_loss

INPUT, HEATMAP, FACTOR = (192, 256), (48, 64), 0.0546875
STRIDE = np.array([191 / 47, 255 / 63])  # UDP: (input - 1) / (heatmap - 1)


def at_heatmap(x: float, y: float) -> np.ndarray:
    """Input-pixel position of heatmap position (x, y)."""
    return np.array([[x, y]]) * STRIDE


def test_label_disc_and_offsets_hand_computed() -> None:
    # joint at heatmap (20.3, 10.6), radius 0.0546875 · 64 = 3.5 px: label 1 where (x - 20.3)² + (y - 10.6)² ≤ 12.25
    targets, weights = encode_udp_combined(at_heatmap(20.3, 10.6), np.ones(1), INPUT, HEATMAP, FACTOR)
    label, ox, oy = targets
    assert targets.shape == (3, 64, 48) and targets.dtype == np.float32 and weights.tolist() == [1.0]
    assert label[10, 20] == 1.0
    assert ox[10, 20] == pytest.approx(0.3 / 3.5) and oy[10, 20] == pytest.approx(0.6 / 3.5)
    assert label[10, 23] == 1.0 and ox[10, 23] == pytest.approx(-2.7 / 3.5)  # 2.7² + 0.6² = 7.65
    assert label[10, 24] == 0.0 and ox[10, 24] == 0.0 and oy[10, 24] == 0.0  # 3.7² = 13.69 > 12.25
    assert label[10, 17] == 1.0 and label[9, 17] == 0.0  # 3.3² + 0.6² = 11.25; 3.3² + 1.6² = 13.45
    assert label[14, 20] == 1.0 and label[15, 20] == 0.0  # 3.4² + 0.3² = 11.65; 4.4² > 12.25
    # the disc, row by row (y = 8 … 14): 5 + 6 + 7 + 7 + 6 + 5 + 2 pixels; offsets vanish off the disc
    assert label.sum(axis=1)[8:15].tolist() == [5, 6, 7, 7, 6, 5, 2] and label.sum() == 38
    assert np.all(ox[label == 0] == 0) and np.all(oy[label == 0] == 0)


def test_radius_and_invalid_joints() -> None:
    assert combined_radius((48, 64), FACTOR) == 3.5 and combined_radius((72, 96), FACTOR) == 5.25
    joints = np.concatenate([at_heatmap(5, 5), at_heatmap(5, 5), at_heatmap(-2.0, 30), at_heatmap(-9.0, 30)])
    targets, weights = encode_udp_combined(joints, np.array([0.0, 1.0, 1.0, 1.0]), INPUT, HEATMAP, FACTOR)
    labels = targets[0::3]
    # weight 0: nothing; a joint off the map keeps its weight and the part of its disc on the map
    assert weights.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert labels[0].sum() == 0 and labels[1].sum() == 7 + 2 * 7 + 2 * 5 + 2 * 3  # rows dy = 0, ±1, ±2, ±3
    assert labels[2][30, :2].tolist() == [1.0, 1.0] and labels[2][30, 2] == 0.0  # x = -2: columns 0 and 1
    assert labels[3].sum() == 0
    with pytest.raises(ValueError, match="radius_factor must be > 0"):
        encode_udp_combined(joints, np.ones(4), INPUT, HEATMAP, 0.0)


@pytest.mark.parametrize(("input_size", "heatmap_size"), [((192, 256), (48, 64)), ((288, 384), (72, 96))])
def test_decode_recovers_the_joint_exactly(input_size, heatmap_size) -> None:
    # the label's blurred peak lies on the disc, where the offset points exactly at the joint (offsets unblurred,
    # as mmpose 1.x decodes)
    rng = np.random.default_rng(1)
    w, h = heatmap_size
    hm_xy = np.stack([rng.uniform(4, w - 5, 17), rng.uniform(4, h - 5, 17)], axis=1)
    joints = hm_xy * (np.array(input_size) - 1) / (np.array(heatmap_size) - 1)
    targets, _ = encode_udp_combined(joints, np.ones(17), input_size, heatmap_size, FACTOR)
    coords, scores = decode_udp_combined(targets[None], heatmap_size, FACTOR, 23, 0)
    np.testing.assert_allclose(coords[0], hm_xy, atol=1e-4)
    assert scores.min() > 0  # the blurred label's peak (the 23-px blur spreads a 38-px disc to ~0.35)


def test_decode_picks_the_blurred_label_peak() -> None:
    # label 1 at (10, 20) alone and on a 3×3 block around (30, 40): after blurring the block wins; the offsets
    # there (0.2, -0.1) · 3.5 are added
    outputs = np.zeros((1, 3, 64, 48), np.float32)
    outputs[0, 0, 20, 10] = 1.0
    outputs[0, 0, 39:42, 29:32] = 0.9
    outputs[0, 1, 40, 30], outputs[0, 2, 40, 30] = 0.2, -0.1
    coords, scores = decode_udp_combined(torch.from_numpy(outputs), HEATMAP, FACTOR, 15, 0)
    np.testing.assert_allclose(coords[0, 0], [30 + 0.7, 40 - 0.35], atol=1e-6)
    assert scores[0, 0] == pytest.approx(blur_maps(outputs[0, 0], 15)[40, 30])
    # an empty map: no joint
    assert decode_udp_combined(np.zeros((1, 3, 64, 48)), HEATMAP, FACTOR, 15, 7)[0].tolist() == [
        [[-1.0, -1.0]]
    ]


def test_offset_blur_keeps_a_linear_offset_field() -> None:
    # the authors blur the offsets (kernel 7): a linear field stays linear away from the border
    y, x = np.mgrid[0:64, 0:48].astype(np.float32)
    field = (0.3 * x - 0.1 * y + 2.0)[None]
    np.testing.assert_allclose(blur_maps(field, 7)[0, 3:-3, 3:-3], field[0, 3:-3, 3:-3], atol=1e-4)
    np.testing.assert_array_equal(blur_maps(field, 0), field)
    with pytest.raises(ValueError, match="must be odd"):
        blur_maps(field, 4)
    many = np.random.default_rng(0).random((3, 200, 8, 6)).astype(np.float32)  # 600 maps: five OpenCV calls
    np.testing.assert_allclose(blur_maps(many, 3)[2, 199], blur_maps(many[2, 199], 3), atol=1e-6)


def test_flip_back_round_trip() -> None:
    # encoding the mirrored crop (x → 191 - x, left/right swapped) and flipping back gives the original targets
    rng = np.random.default_rng(2)
    joints = np.stack([rng.uniform(0, 191, 17), rng.uniform(0, 255, 17)], axis=1)
    original, _ = encode_udp_combined(joints, np.ones(17), INPUT, HEATMAP, FACTOR)
    mirrored = np.stack([191 - joints[:, 0], joints[:, 1]], axis=1)[COCO.flip_index]
    flipped, _ = encode_udp_combined(mirrored, np.ones(17), INPUT, HEATMAP, FACTOR)
    back = flip_back_combined(flipped[None], COCO.flip_index)
    np.testing.assert_allclose(back[0], original, atol=1e-6)
    back_torch = flip_back_combined(torch.from_numpy(flipped[None]), torch.as_tensor(COCO.flip_index))
    assert isinstance(back_torch, torch.Tensor)
    np.testing.assert_allclose(back_torch.numpy()[0], original, atol=1e-6)
    # the x-offset is negated, the label and y-offset are not
    assert flipped[1].min() < 0 < flipped[1].max()
    np.testing.assert_array_equal(
        flip_back_combined(flip_back_combined(flipped[None], COCO.flip_index), COCO.flip_index), flipped[None]
    )


def test_decode_to_image_and_errors() -> None:
    box_centre, box_size = np.array([320.0, 240.0]), np.array([150.0, 200.0])
    warp = udp_warp_matrix(box_centre, box_size, 0.0, INPUT)
    image_joints = np.array([[300.0, 200.0], [350.5, 280.25]])
    crop_joints = apply_affine(image_joints, warp)
    targets, _ = encode_udp_combined(crop_joints, np.ones(2), INPUT, HEATMAP, FACTOR)
    result = decode_udp_combined_to_image(
        targets[None], invert_affine(warp)[None], INPUT, HEATMAP, FACTOR, 23, 0
    )
    assert result.shape == (1, 2, 3)
    np.testing.assert_allclose(result[0, :, :2], image_joints, atol=1e-3)
    with pytest.raises(ValueError, match="3 channels per keypoint"):
        decode_udp_combined(np.zeros((1, 4, 64, 48)), HEATMAP, FACTOR, 15, 7)
    with pytest.raises(ValueError, match="heatmap_size is \\[48, 64\\]"):
        decode_udp_combined(np.zeros((1, 3, 32, 24)), HEATMAP, FACTOR, 15, 7)


def test_loss_hand_computed() -> None:
    # one joint on a 2×2 map: label gt [[1, 0], [0, 0]], prediction [[0.5, 0.5], [0, 0]] →
    # label 0.5 · (0.25 + 0.25) / 4 = 0.0625; x-offset gt 0.2, pred 0 on the disc pixel → 0.5 · 0.04 / 4 = 0.005;
    # y-offset gt 0.4, pred 0.1 → 0.5 · 0.09 / 4 = 0.01125; off-disc offsets do not count
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0], target[0, 1, 0, 0], target[0, 2, 0, 0] = 1.0, 0.2, 0.4
    target[0, 1:, 1, 1] = 9.0
    output = torch.zeros(1, 3, 2, 2)
    output[0, 0, 0, :] = 0.5
    output[0, 2, 0, 0] = 0.1
    output[0, 1:, 1, 1] = -5.0
    assert combined_target_mse_loss(output, target, torch.ones(1, 1)).item() == pytest.approx(0.07875)
    terms = CombinedTargetMSELoss(loss_weight=2.0)(
        output, {"heatmaps": target, "keypoint_weights": torch.ones(1, 1)}
    )
    assert list(terms) == ["loss"] and terms["loss"].item() == pytest.approx(0.1575)
    # weight 0: nothing counts (the label mask is weighted too, as mmpose's)
    assert combined_target_mse_loss(output, target, torch.zeros(1, 1)).item() == 0.0
    assert combined_target_mse_loss(
        output, target, torch.zeros(1, 1), use_target_weight=False
    ).item() == pytest.approx(0.07875)
    with pytest.raises(ValueError, match="3 channels per keypoint"):
        combined_target_mse_loss(output[:, :2], target[:, :2], torch.ones(1, 1))


def test_codec_encodes_the_label_disc_and_offsets_of_one_person() -> None:
    codec = UDPCombinedCodec(INPUT, HEATMAP)
    assert (codec.radius_factor, codec.blur_kernel, codec.offset_blur_kernel) == (FACTOR, 15, 7)
    assert codec.output_channels(17) == 51
    keypoints = np.concatenate([at_heatmap(20.3, 10.6), at_heatmap(5, 5)])[None]
    targets = codec.encode(keypoints, np.array([[2, 0]]))  # the second joint is not labelled
    assert sorted(targets) == ["heatmaps", "keypoint_weights"]
    heatmaps = targets["heatmaps"]
    assert heatmaps.shape == (6, 64, 48) and targets["keypoint_weights"].tolist() == [1.0, 0.0]
    assert heatmaps[0].sum() == 38 and heatmaps[3:].sum() == 0  # the disc of the hand-computed case above
    assert heatmaps[1, 10, 20] == pytest.approx(0.3 / 3.5) and heatmaps[2, 10, 20] == pytest.approx(0.6 / 3.5)
    with pytest.raises(ValueError, match="one person of a crop, got 2"):
        codec.encode(np.zeros((2, 2, 2)), np.ones((2, 2)))


def test_codec_decodes_its_targets_to_the_exact_image_position() -> None:
    # unblurred offsets (mmpose 1.x): exact; the authors' offset blur (7) moves the joint by < 0.1 heatmap px
    warp = udp_warp_matrix(np.array([320.0, 240.0]), np.array([150.0, 200.0]), 0.0, INPUT)
    image_joints = np.array([[300.0, 200.0], [350.5, 280.25], [310.2, 230.7]])
    encoded = UDPCombinedCodec(INPUT, HEATMAP).encode(apply_affine(image_joints, warp)[None], np.ones((1, 3)))
    to_image = invert_affine(warp)[None]
    exact = UDPCombinedCodec(INPUT, HEATMAP, offset_blur_kernel=0).decode(encoded["heatmaps"][None], to_image)
    assert exact.keypoints.shape == (1, 3, 3) and exact.scores.shape == (1,)
    np.testing.assert_allclose(exact.keypoints[0, :, :2], image_joints, atol=1e-3)
    assert exact.scores[0] == pytest.approx(exact.keypoints[0, :, 2].mean())
    blurred = UDPCombinedCodec(INPUT, HEATMAP).decode(torch.from_numpy(encoded["heatmaps"][None]), to_image)
    np.testing.assert_allclose(blurred.keypoints[0, :, :2], image_joints, atol=0.1 * 150 / 48)


def test_codec_flip_test_negates_the_x_offsets() -> None:
    codec = UDPCombinedCodec(INPUT, HEATMAP)
    joints = np.array([[60.3, 100.6], [120.0, 80.2]])  # left eye, right eye (COCO 1, 2) of a 3-joint layout
    flip_index = [0, 2, 1]
    crop = np.concatenate([np.array([[96.0, 30.0]]), joints])
    mirrored = np.stack([191 - crop[:, 0], crop[:, 1]], axis=1)[flip_index]
    original = codec.encode(crop[None], np.ones((1, 3)))["heatmaps"][None]
    flipped = codec.encode(mirrored[None], np.ones((1, 3)))["heatmaps"][None]
    np.testing.assert_allclose(codec.flip_back(flipped, flip_index), original, atol=1e-6)
    merged = codec.merge_flip(torch.from_numpy(original), torch.from_numpy(flipped), torch.tensor(flip_index))
    np.testing.assert_allclose(merged.numpy(), original, atol=1e-6)
    # without the sign change the mean of the x-offsets would cancel: the mirrored x-offset points the other way
    assert np.abs(original[0, 4] + flipped[0, 7][:, ::-1]).max() < 1e-6 and np.abs(original[0, 4]).max() > 0.5


def test_codec_errors_name_the_option() -> None:
    codec = UDPCombinedCodec(INPUT, HEATMAP)
    codec.check_output_size([(48, 64)], "net")
    with pytest.raises(ValueError, match=r"Set paradigm.codec.heatmap_size=\[24, 32\]"):
        codec.check_output_size([(24, 32)], "net")
    with pytest.raises(ValueError, match="radius_factor must be > 0"):
        UDPCombinedCodec(INPUT, HEATMAP, radius_factor=0.0)
    with pytest.raises(ValueError, match="offset_blur_kernel must be odd, or 0"):
        UDPCombinedCodec(INPUT, HEATMAP, offset_blur_kernel=4)
