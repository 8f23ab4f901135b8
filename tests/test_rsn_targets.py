"""RSN's multi-kernel Megvii targets, their decoding and the multi-stage loss, against hand-computed values.

Which mmpose 1.x function each test mirrors:
- encode tests: ``mmpose.codecs.MegviiHeatmap.encode`` (an impulse blurred by ``cv2.GaussianBlur(k, k)``, scaled
  to a peak of 255) and ``GenerateTarget(multilevel=True)`` with one encoder per kernel;
- decode tests: ``MegviiHeatmap.decode``;
- loss tests: ``KeypointMSELoss``, ``KeypointOHKMMSELoss`` and ``MSPNHead.loss`` with the settings of
  ``td-hm_2xrsn50_8xb32-210e_coco-256x192.py``;
- ``test_codec_*``: the same behind the codec contract, as ``MSPNHead.predict`` uses them (the flip test of the
  last output, ``flip_mode="heatmap"``, ``shift_heatmap=False``; the last output decoded by ``MegviiHeatmap``).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aidpose.codecs.megvii_heatmap import (
    MegviiHeatmapCodec,
    decode_megvii_heatmaps,
    encode_megvii_heatmaps,
    encode_multilevel_megvii_heatmaps,
)
from aidpose.codecs.udp_heatmap import encode_udp_heatmaps
from aidpose.models.rsn_loss import MultiStageHeatmapLoss, keypoint_mse, multi_stage_heatmap_loss, ohkm_mse

INPUT, HEATMAP = (192, 256), (48, 64)
# mmpose's 2×RSN-50: five kernels; stage 1 trains on levels 0-3, stage 2 on 1-4; OHKM on each stage's last unit
KERNELS = [15, 11, 9, 7, 5]
LEVELS = [0, 1, 2, 3, 1, 2, 3, 4]
LOSS_WEIGHTS = [0.25, 0.25, 0.25, 1.0] * 2
OHKM = [False, False, False, True] * 2


def test_kernel_5_hand_computed_values() -> None:
    # OpenCV's 5-tap kernel for sigma 0 is [1, 4, 6, 4, 1] / 16; the peak (6/16)² is scaled to 255
    joint = np.array([[4 * 20 + 1.7, 4 * 10 + 3.9]])  # truncated to heatmap pixel (20, 10)
    heatmaps, weights = encode_megvii_heatmaps(joint, np.ones(1), INPUT, HEATMAP, 5)
    hm = heatmaps[0]
    assert heatmaps.shape == (1, 64, 48) and heatmaps.dtype == np.float32 and weights.tolist() == [1.0]
    assert hm[10, 20] == pytest.approx(255.0)
    assert hm[10, 21] == pytest.approx(255 * 4 / 6) and hm[9, 20] == pytest.approx(255 * 4 / 6)
    assert hm[11, 21] == pytest.approx(255 * (4 / 6) ** 2)
    assert hm[12, 22] == pytest.approx(255 * (1 / 6) ** 2)
    assert hm[10, 23] == 0.0 and np.count_nonzero(hm) == 25


def test_kernel_15_is_a_gaussian_of_sigma_2_6() -> None:
    # OpenCV: sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8 = 2.6 for k = 15; radius 7
    heatmaps, _ = encode_megvii_heatmaps(np.array([[80.0, 40.0]]), np.ones(1), INPUT, HEATMAP, 15)
    row = heatmaps[0, 10]
    for d in range(1, 8):
        assert row[20 + d] == pytest.approx(255 * np.exp(-(d**2) / (2 * 2.6**2)), rel=1e-5)
    assert row[28] == 0.0


def test_border_folds_taps_back_like_opencv() -> None:
    # impulse at column 1, kernel 5, reflect-101 border: column 0 gets taps -1 and +1 (4/16 + 4/16), the peak
    # taps -2 and 0 (1/16 + 6/16), column 2 only tap +1 (4/16); all scaled by 255 / peak
    heatmaps, _ = encode_megvii_heatmaps(np.array([[4 * 1 + 0.5, 4 * 10.0]]), np.ones(1), INPUT, HEATMAP, 5)
    row = heatmaps[0, 10]
    assert row[1] == pytest.approx(255.0)
    assert row[0] == pytest.approx(255 * 8 / 7)
    assert row[2] == pytest.approx(255 * 4 / 7)


@pytest.mark.parametrize("kernel", KERNELS)
def test_equals_a_blurred_impulse(kernel) -> None:
    rng = np.random.default_rng(kernel)
    joints = np.stack([rng.uniform(0, 192, 17), rng.uniform(0, 256, 17)], axis=1)
    joints[:2] = [[0.5, 1.0], [191.0, 255.0]]  # corner pixels: the border folds in both directions
    heatmaps, _ = encode_megvii_heatmaps(joints, np.ones(17), INPUT, HEATMAP, kernel)
    for k, (x, y) in enumerate((joints / 4).astype(int)):
        impulse = np.zeros((64, 48), np.float32)
        impulse[y, x] = 1.0
        blurred = cv2.GaussianBlur(impulse, (kernel, kernel), 0)
        np.testing.assert_allclose(heatmaps[k], blurred / blurred[y, x] * 255, atol=1e-3)


def test_invalid_joints_get_no_target() -> None:
    joints = np.array([[50.0, 50.0], [-3.0, 10.0], [-4.0, 10.0], [192.0, 10.0], [10.0, 256.0]])
    heatmaps, weights = encode_megvii_heatmaps(joints, np.array([0.0, 1, 1, 1, 1]), INPUT, HEATMAP, 5)
    # weight 0; x = -3 truncates to column 0 (kept, as mmpose); x = -4 → -1, x = 192 → 48, y = 256 → 64: outside
    assert weights.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert [float(hm.max()) for hm in heatmaps] == [0.0, 255.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="odd"):
        encode_megvii_heatmaps(joints, np.ones(5), INPUT, HEATMAP, 4)


def test_multilevel_targets_stack_one_kernel_each() -> None:
    joints = np.array([[33.0, 77.0], [150.0, 200.0]])
    targets, weights = encode_multilevel_megvii_heatmaps(
        joints, np.array([1.0, 0.0]), INPUT, HEATMAP, KERNELS
    )
    assert targets.shape == (5, 2, 64, 48) and weights.tolist() == [1.0, 0.0]
    for level, kernel in enumerate(KERNELS):
        np.testing.assert_array_equal(
            targets[level], encode_megvii_heatmaps(joints, weights, INPUT, HEATMAP, kernel)[0]
        )
    spread = [np.count_nonzero(t[0] > 1) for t in targets]
    assert spread == sorted(spread, reverse=True)  # coarse levels are wider


def test_decode_shifts_a_quarter_pixel_towards_the_higher_neighbour() -> None:
    # a Gaussian at heatmap (20.3, 10): the argmax (20, 10) has a higher right than left neighbour and equal
    # ones above and below → x = 20 + 0.25 + 0.5, y = 10 + 0 + 0.5 heatmap pixels, times the stride 4
    udp_input = (np.array(HEATMAP) - 1) * 4 + 1  # an input size whose UDP stride is exactly 4
    gaussian, _ = encode_udp_heatmaps(np.array([[20.3 * 4, 10 * 4.0]]), np.ones(1), udp_input, HEATMAP, 2.0)
    keypoints, scores = decode_megvii_heatmaps(gaussian[None] * 255, INPUT, kernel_size=5)
    np.testing.assert_allclose(keypoints[0, 0], [20.75 * 4, 10.5 * 4])
    assert scores[0, 0] == pytest.approx(gaussian.max() + 0.5, rel=1e-5)


def test_decode_at_the_border_and_of_empty_maps() -> None:
    heatmaps = np.zeros((1, 2, 64, 48), np.float32)
    heatmaps[0, 0, 30, 1] = 255.0  # column 1 is not interior (1 < x fails): no shift, no half pixel
    keypoints, scores = decode_megvii_heatmaps(torch.from_numpy(heatmaps), INPUT)
    np.testing.assert_allclose(keypoints[0], [[4.0, 120.0], [-4.0, -4.0]])
    np.testing.assert_allclose(scores[0], [1.5, 0.5])


def test_round_trip_lands_in_the_joints_cell() -> None:
    rng = np.random.default_rng(0)
    joints = np.stack([rng.uniform(8, 184, 17), rng.uniform(8, 248, 17)], axis=1)
    heatmaps, _ = encode_megvii_heatmaps(joints, np.ones(17), INPUT, HEATMAP, 5)
    keypoints, _ = decode_megvii_heatmaps(heatmaps[None], INPUT)
    cell = np.trunc(joints / 4) * 4
    # symmetric target: the cell's centre, up to the quarter-pixel step that rounding noise in the blur may take
    np.testing.assert_allclose(keypoints[0], cell + 2.0, atol=1.0)


def test_keypoint_mse_and_ohkm_hand_computed() -> None:
    pred = torch.zeros(1, 2, 2, 2)
    assert keypoint_mse(pred, torch.ones(1, 2, 2, 2), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    # per-joint losses (w·target)²: sample 0 [1, 4, 9] → top 2 mean 6.5; sample 1 [1, 0, 1] → 1; batch mean 3.75
    target = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])[:, :, None, None].expand(2, 3, 4, 4)
    weight = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert ohkm_mse(torch.zeros(2, 3, 4, 4), target, weight, topk=2).item() == pytest.approx(3.75)
    with pytest.raises(ValueError, match=r"topk=8 must be in 1\.\.3"):
        ohkm_mse(torch.zeros(2, 3, 4, 4), target, weight)


def test_two_stage_rsn50_loss_hand_computed() -> None:
    b, k = 2, 10
    outputs = [torch.zeros(b, k, 4, 3, requires_grad=True) for _ in range(8)]
    weights = torch.ones(b, k)
    # level l's target is l + 1 everywhere: MSE = OHKM = (l + 1)² →
    # 0.25 (1 + 4 + 9) + 16 + 0.25 (4 + 9 + 16) + 25 = 51.75
    levels = torch.arange(1.0, 6.0)[None, :, None, None, None].expand(b, 5, k, 4, 3)
    loss = multi_stage_heatmap_loss(outputs, levels, weights, LEVELS, LOSS_WEIGHTS, OHKM)
    assert loss.item() == pytest.approx(51.75)
    loss.backward()
    assert all(o.grad.abs().sum() > 0 for o in outputs)
    # joint j's target is j at every level: MSE = mean(j²) = 28.5, OHKM = mean of the 8 largest = 284 / 8 = 35.5
    # → 6 × 0.25 × 28.5 + 2 × 35.5 = 113.75
    joints = torch.arange(0.0, k)[None, None, :, None, None].expand(b, 5, k, 4, 3)
    module = MultiStageHeatmapLoss(LEVELS, LOSS_WEIGHTS, OHKM, topk=8)
    terms = module([o.detach() for o in outputs], {"heatmaps": joints, "keypoint_weights": weights})
    assert list(terms) == ["loss"] and terms["loss"].item() == pytest.approx(113.75)


def test_multi_stage_loss_rejects_mismatched_settings() -> None:
    outputs = [torch.zeros(1, 8, 2, 2)] * 8
    targets = torch.zeros(1, 5, 8, 2, 2)
    with pytest.raises(ValueError, match="8 outputs need as many"):
        multi_stage_heatmap_loss(outputs, targets, torch.ones(1, 8), LEVELS[:4], LOSS_WEIGHTS, OHKM)
    with pytest.raises(ValueError, match="beyond the 5 targets"):
        multi_stage_heatmap_loss(outputs, targets, torch.ones(1, 8), [5] * 8, LOSS_WEIGHTS, OHKM)


def test_codec_encodes_one_level_per_kernel_and_outputs_one_map_per_unit() -> None:
    codec = MegviiHeatmapCodec(INPUT, HEATMAP, KERNELS, LEVELS)
    assert codec.output_channels(17) == [17] * 8
    joint = np.array([[[4 * 20 + 1.7, 4 * 10 + 3.9], [0.0, 0.0]]])  # the hand-computed joint; one unlabelled
    targets = codec.encode(joint, np.array([[1, 0]]))
    assert sorted(targets) == ["heatmaps", "keypoint_weights"]
    assert targets["keypoint_weights"].tolist() == [1, 0]
    heatmaps = targets["heatmaps"]
    assert heatmaps.shape == (5, 2, 64, 48) and heatmaps[:, 1].sum() == 0
    assert heatmaps[:, 0, 10, 20].tolist() == pytest.approx([255.0] * 5)
    assert [int((hm > 1).sum()) for hm in heatmaps[:, 0]] == sorted(
        (int((hm > 1).sum()) for hm in heatmaps[:, 0]), reverse=True
    )  # kernel 15 first: the widest
    np.testing.assert_array_equal(
        heatmaps[4], encode_megvii_heatmaps(joint[0], np.array([1, 0]), INPUT, HEATMAP, 5)[0]
    )
    codec.check_output_size([(48, 64)] * 8, "net")
    with pytest.raises(ValueError, match="decodes 8 output"):
        codec.check_output_size([(48, 64)] * 4, "net")
    with pytest.raises(ValueError, match="must name levels of kernel_sizes"):
        MegviiHeatmapCodec(INPUT, HEATMAP, [11, 9, 7, 5], LEVELS)
    with pytest.raises(ValueError, match="kernel_sizes must be odd"):
        MegviiHeatmapCodec(INPUT, HEATMAP, [15, 10], [0, 1])


def test_codec_decodes_the_last_output_and_flips_every_output() -> None:
    codec = MegviiHeatmapCodec(INPUT, HEATMAP, KERNELS, LEVELS)
    # joints at the centres of cells (10, 25), (30, 15), (24, 50)
    joints = np.array([[[41.0, 101.0], [121.0, 61.0], [97.0, 201.0]]])
    level = codec.encode(joints, np.ones((1, 3)))["heatmaps"][4]
    # only the last output is decoded
    outputs = [torch.zeros(1, 3, 64, 48)] * 7 + [torch.from_numpy(level[None])]
    to_image = np.array([[[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]])
    found = codec.decode(outputs, to_image)
    cells = np.trunc(joints[0] / 4) * 4 + 2.0  # a symmetric target decodes to its cell's centre
    np.testing.assert_allclose(found.keypoints[0, :, :2], cells * 2 + [10.0, -5.0], atol=2 * 1.0)
    np.testing.assert_allclose(found.keypoints[0, :, 2], 1.5, atol=1e-5)  # 255 / 255 + 0.5
    # flip test: every output flipped back (columns reversed, left/right swapped) and averaged with the original
    flip_index = [0, 2, 1]
    mirrored = [o.flip(-1)[:, flip_index] for o in outputs]
    merged = codec.merge_flip(outputs, mirrored, flip_index)
    assert len(merged) == 8
    for out, m in zip(outputs, merged, strict=True):
        torch.testing.assert_close(m, out)
