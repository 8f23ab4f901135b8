"""Bottom-up codec: UDP heatmaps, tag indices, NMS, grouping, filling, flip-back, merging, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aidpose.codecs.associative_embedding import (
    AssociativeEmbeddingCodec,
    encode_bottomup_heatmaps,
    encode_keypoint_indices,
    flip_back,
    merge_flip,
    merge_resolutions,
    merge_scales,
)
from aidpose.codecs.grouping import (
    Candidates,
    fill_missing_joints,
    group_by_tags,
    heatmap_nms,
    person_tags_at,
    quarter_pixel_shift,
    top_k_candidates,
)
from aidpose.codecs.udp_heatmap import heatmap_to_image_matrix, refine_dark_udp, udp_stride
from aidpose.data.keypoints import COCO
from aidpose.geometry.affine import apply_affine, invert_affine
from aidpose.geometry.inference import inference_sizes, inference_warps


def test_heatmaps_peak_at_subpixel_centre_and_take_max_of_overlaps() -> None:
    keypoints = np.array([[[10.3, 7.6], [0.0, 0.0]], [[12.0, 7.0], [30.0, 5.0]]])
    visible = np.array([[2, 0], [1, 2]])
    hm = encode_bottomup_heatmaps(keypoints, visible, (40, 20), sigma=2.0)
    assert hm.shape == (2, 20, 40) and hm.dtype == np.float32
    # joint 0: max of two Gaussians centred at (10.3, 7.6) and (12, 7)
    g1 = np.exp(-((11 - 10.3) ** 2 + (7 - 7.6) ** 2) / 8)
    g2 = np.exp(-((11 - 12.0) ** 2 + (7 - 7.0) ** 2) / 8)
    assert hm[0, 7, 11] == pytest.approx(max(g1, g2), rel=1e-6)
    assert hm[0, 7, 12] == pytest.approx(1.0)
    # joint 1: the unlabelled (0, 0) adds nothing; window of radius 6 around (30, 5), clipped at the top
    assert hm[1, 0, 0] == 0 and hm[1, 5, 30] == pytest.approx(1.0)
    assert hm[1, 5, 37] == 0 and hm[1, 5, 36] == pytest.approx(np.exp(-36 / 8), rel=1e-6)


def test_keypoint_indices_flatten_joint_row_column_and_mark_outside() -> None:
    keypoints = np.array([[[3.4, 2.6], [9.0, 1.0], [-0.6, 0.0]]])
    indices = encode_keypoint_indices(keypoints, np.array([[2, 1, 2]]), (8, 5))
    # joint 0 at (3, 3): 0*40 + 3*8 + 3; joint 1 x=9 is off the 8-wide map; joint 2 rounds to x=-1
    assert indices.tolist() == [[[27, 1], [0, 0], [0, 0]]]
    indices = encode_keypoint_indices(np.array([[[1.0, 1.0], [7.0, 4.0]]]), np.array([[0, 2]]), (8, 5))
    assert indices.tolist() == [[[0, 0], [1 * 40 + 4 * 8 + 7, 1]]]


def test_codec_encode_targets_per_resolution_and_pads_indices() -> None:
    codec = AssociativeEmbeddingCodec(input_size=(64, 64), heatmap_sizes=[(16, 16), (32, 32)], max_people=3)
    keypoints = np.array([[[21.0, 42.0], [63.0, 0.0]], [[5.0, 5.0], [0.0, 0.0]]])
    visible = np.array([[2, 2], [0, 0]])
    targets = codec.encode(keypoints, visible)
    assert [h.shape for h in targets["heatmaps"]] == [(2, 16, 16), (2, 32, 32)]
    # UDP: input (21, 42) → heatmap (5, 10) at 1/4 and (10.33, 20.67) at 1/2 (stride 63/31)
    assert targets["heatmaps"][0][0, 10, 5] == pytest.approx(1.0)
    assert targets["heatmaps"][1][0, 21, 10] == pytest.approx(np.exp(-2 * (1 / 3) ** 2 / 8), rel=1e-5)
    assert targets["heatmaps"][1][1, 0, 31] == pytest.approx(1.0)
    # the person without labelled joints is left out of the tag loss; rows padded to max_people
    assert targets["keypoint_indices"].shape == (3, 2, 2)
    assert targets["keypoint_indices"][0].tolist() == [[10 * 16 + 5, 1], [256 + 15, 1]]
    assert not targets["keypoint_indices"][1:].any() and targets["people_truncated"] == 0


def test_nms_keeps_local_maxima_only() -> None:
    hm = np.zeros((1, 7, 7), np.float32)
    hm[0, 2, 2], hm[0, 2, 3], hm[0, 6, 6] = 0.9, 0.5, 0.4
    out = heatmap_nms(hm, 3)
    assert out[0, 2, 2] == pytest.approx(0.9) and out[0, 2, 3] == 0 and out[0, 6, 6] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="nms_kernel"):
        heatmap_nms(hm, 4)


def candidates(
    vals: list[list[float]], tags: list[list[float]], locs: list[list[tuple[int, int]]]
) -> Candidates:
    return Candidates(
        np.array(vals, np.float32), np.array(locs, np.int64), np.array(tags, np.float32)[..., None]
    )


def test_grouping_recovers_people_with_missing_joints_close_tags_and_extra_candidates() -> None:
    # 3 joints × 4 candidates; people A (tag 0.0), B (tag 1.2), C (tag 2.4, misses joint 1);
    # tags 1.2 apart: round(dist) is 1 between neighbours, so heat decides nothing across people.
    vals = [[0.9, 0.8, 0.7, 0.05], [0.95, 0.6, 0.02, 0.0], [0.5, 0.9, 0.85, 0.3]]
    tags = [[0.0, 1.2, 2.4, 5.0], [1.25, 0.1, 9.0, 9.0], [2.35, -0.05, 1.15, 7.0]]
    locs = [
        [(1, 1), (5, 1), (9, 1), (0, 0)],
        [(5, 3), (1, 3), (0, 0), (0, 0)],
        [(9, 5), (1, 5), (5, 5), (3, 3)],
    ]
    groups = group_by_tags(candidates(vals, tags, locs), [0, 1, 2], 0.1, 1.0, 30)
    # joint 2's candidate with tag 7.0 is far from everyone: a fourth person of one joint
    assert groups.keypoints.shape == (4, 3, 3)
    kp = groups.keypoints
    np.testing.assert_allclose(kp[0], [[1, 1, 0.9], [1, 3, 0.6], [1, 5, 0.9]])
    np.testing.assert_allclose(kp[1], [[5, 1, 0.8], [5, 3, 0.95], [5, 5, 0.85]])
    np.testing.assert_allclose(kp[2], [[9, 1, 0.7], [0, 0, 0], [9, 5, 0.5]])
    np.testing.assert_allclose(kp[3], [[0, 0, 0], [0, 0, 0], [3, 3, 0.3]])
    np.testing.assert_allclose(groups.tags[:3, 0], [(0 + 0.1 - 0.05) / 3, (1.2 + 1.25 + 1.15) / 3, 2.375])


def test_grouping_cost_prefers_heat_when_tag_distances_round_equal() -> None:
    # two candidates for one person (tag 0): distances 0.3 and 0.4 both round to 0 → higher heat wins
    vals = [[0.9, 0.0], [0.5, 0.7]]
    tags = [[0.0, 0.0], [0.3, 0.4]]
    locs = [[(0, 0), (0, 0)], [(1, 1), (2, 2)]]
    groups = group_by_tags(candidates(vals, tags, locs), [0, 1], 0.1, 1.0, 30)
    assert groups.keypoints[0, 1].tolist() == pytest.approx([2, 2, 0.7])
    assert groups.keypoints[1, 1].tolist() == pytest.approx([1, 1, 0.5])  # the other opens a person


def test_grouping_matches_only_the_first_max_people_and_validates_order() -> None:
    vals = [[0.9, 0.8], [0.7, 0.0]]
    tags = [[0.0, 3.0], [3.0, 0.0]]
    locs = [[(0, 0), (1, 0)], [(2, 0), (0, 0)]]
    groups = group_by_tags(candidates(vals, tags, locs), [0, 1], 0.1, 1.0, max_people=1)
    assert len(groups.keypoints) == 3  # joint 1 (tag 3) may only match person 0 (tag 0): new person
    with pytest.raises(ValueError, match="permutation"):
        group_by_tags(candidates(vals, tags, locs), [0, 0], 0.1, 1.0, 30)


def test_fill_missing_joint_takes_argmax_of_heat_minus_rounded_tag_distance() -> None:
    heat = np.zeros((2, 4, 6), np.float32)
    tags = np.zeros((2, 4, 6, 1), np.float32)
    heat[1, 1, 1], tags[1, 1, 1] = 0.9, 3.0  # strong but another person's tag (distance 3)
    heat[1, 2, 4], tags[1, 2, 4] = 0.3, 0.2  # weak, own tag (rounds to 0)
    tags[1, 0, 0] = 0.0  # heat 0 elsewhere: objective 0 < 0.3
    kp = np.zeros((1, 2, 3), np.float32)
    kp[0, 0] = [2, 2, 0.8]
    person_tags = np.array([[0.1]], np.float32)
    filled = fill_missing_joints(kp, person_tags, heat, tags)
    assert filled[0, 1].tolist() == pytest.approx([4, 2, 0.3])
    assert filled[0, 0].tolist() == pytest.approx([2, 2, 0.8])  # present joints untouched
    assert kp[0, 1, 2] == 0  # input not modified
    # pruning with candidates gives the same answer
    cands = top_k_candidates(heatmap_nms(heat, 3), tags, 3)
    np.testing.assert_array_equal(fill_missing_joints(kp, person_tags, heat, tags, cands), filled)
    # nothing with positive heat reachable: the joint stays missing
    assert fill_missing_joints(kp, person_tags, np.zeros_like(heat), tags)[0, 1, 2] == 0


def test_fill_pruning_is_exact_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    heat = rng.random((3, 20, 20)).astype(np.float32) ** 4
    tags = rng.normal(0, 2, (3, 20, 20, 2)).astype(np.float32)
    kp = np.zeros((5, 3, 3), np.float32)
    person_tags = rng.normal(0, 2, (5, 2)).astype(np.float32)
    cands = top_k_candidates(heatmap_nms(heat, 5), tags, 10)
    np.testing.assert_array_equal(
        fill_missing_joints(kp, person_tags, heat, tags, cands),
        fill_missing_joints(kp, person_tags, heat, tags),
    )


def test_flip_back_aligns_heatmaps_and_tags_of_a_mirrored_input() -> None:
    """Encoding a mirrored image's people and flipping back equals encoding the original (UDP: exact)."""
    rng = np.random.default_rng(1)
    flip_index = COCO.flip_index
    w, h = 64, 48
    kp = rng.uniform([0, 0], [w - 1, h - 1], (2, 17, 2))
    mirrored = kp[:, flip_index].copy()
    mirrored[..., 0] = (w - 1) - mirrored[..., 0]
    vis = np.full((2, 17), 2)
    original = torch.from_numpy(encode_bottomup_heatmaps(kp, vis, (w, h), 2.0))[None]
    flipped = torch.from_numpy(encode_bottomup_heatmaps(mirrored, vis, (w, h), 2.0))[None]
    tags = original[..., None] * torch.tensor([1.0, -2.0])  # any per-joint map works as a tag map
    flipped_tags = flipped[..., None] * torch.tensor([1.0, -2.0])
    back, back_tags = flip_back(flipped, flipped_tags, flip_index)
    torch.testing.assert_close(back, original, atol=1e-6, rtol=0)
    torch.testing.assert_close(back_tags, tags, atol=1e-6, rtol=0)
    merged, merged_tags = merge_flip(original, tags, back, back_tags)
    assert merged_tags.shape == (1, 17, h, w, 4)
    torch.testing.assert_close(merged, original)


def test_merge_resolutions_upsamples_quarter_with_aligned_corners_and_averages() -> None:
    k = 2
    quarter = torch.zeros(1, 2 * k, 3, 3)
    quarter[0, 0] = torch.arange(9.0).reshape(3, 3)  # heatmap of joint 0
    quarter[0, 2] = 5.0  # tag map of joint 0
    half = torch.ones(1, k, 5, 5)
    heatmaps, tags = merge_resolutions([quarter, half], k, [True, True], [True, False])
    assert heatmaps.shape == (1, k, 5, 5) and tags.shape == (1, k, 5, 5, 1)
    # aligned corners: the 1/4 map's corners land on the 1/2 map's corners, midpoints in between
    assert heatmaps[0, 0, 0, 0] == pytest.approx((0 + 1) / 2)
    assert heatmaps[0, 0, 4, 4] == pytest.approx((8 + 1) / 2)
    assert heatmaps[0, 0, 0, 1] == pytest.approx((0.5 + 1) / 2)
    assert torch.all(tags[0, 0] == 5.0) and torch.all(tags[0, 1] == 0.0)
    with pytest.raises(ValueError, match="flags"):
        merge_resolutions([quarter], k, [True, True], [True, False])


def test_merge_scales_averages_heatmaps_and_concatenates_tags() -> None:
    small = torch.full((1, 1, 3, 3), 2.0), torch.full((1, 1, 3, 3, 2), 1.0)
    large = torch.full((1, 1, 5, 5), 4.0), torch.full((1, 1, 5, 5, 1), 7.0)
    heatmaps, tags = merge_scales([small[0], large[0]], [small[1], large[1]], (5, 5))
    assert heatmaps.shape == (1, 1, 5, 5) and torch.allclose(heatmaps, torch.tensor(3.0))
    assert tags.shape == (1, 1, 5, 5, 3) and tags[0, 0, 2, 2].tolist() == [1.0, 1.0, 7.0]
    codec = AssociativeEmbeddingCodec((8, 8), [(3, 3)], scales=[0.5, 1.0], tags_all_scales=False)
    assert codec.merge_scales([small[0], large[0]], [small[1], large[1]], (5, 5))[1].shape[-1] == 1


def test_inference_warps_cover_the_same_region_at_every_scale() -> None:
    warps = inference_warps((640, 425), 512, [0.5, 1.0, 2.0], size_divisor=32)
    sizes = [size for _, size in warps]
    # short side 425 → 512; long side 640 · 511/424 ≈ 772 → 800; the other scales round to multiples of 32
    assert sizes == [(384, 256), (800, 512), (1600, 1024)]
    corners = np.array([[0.0, 0.0], [1.0, 1.0]])
    image_points = []
    for matrix, size in warps:
        to_image = invert_affine(matrix)
        image_points.append(apply_affine(corners * (np.array(size) - 1), to_image))
    np.testing.assert_allclose(image_points[0], image_points[1], atol=1e-3)
    np.testing.assert_allclose(image_points[2], image_points[1], atol=1e-3)
    # the short side fills the input exactly: image rows 0 and 424 map to input rows 0 and 511
    np.testing.assert_allclose(
        apply_affine(np.array([[319.5, 0.0], [319.5, 424.0]]), warps[1][0])[:, 1], [0, 511]
    )


def test_official_test_sizes_pad_to_64_from_the_smallest_scale() -> None:
    """HigherHRNet's get_multi_scale_size (lib/utils/transforms.py lines 155-176) on a 640×425 image, input 512."""
    # one scale: short side 425 → 512; long side 512 · 640/425 ≈ 771.0 → 832 (multiple of 64; aidpose's 32: 800)
    assert inference_sizes((640, 425), 512, [1.0], 64, "higherhrnet")[1] == [(832, 512)]
    assert inference_sizes((425, 640), 512, [1.0], 64, "higherhrnet")[1] == [(512, 832)]
    # scales 0.5, 1, 2: sizes from the smallest, 256 and 256 · 640/425 ≈ 385.5 → 448, times 1, 2 and 4
    region, sizes = inference_sizes((640, 425), 512, [0.5, 1.0, 2.0], 64, "higherhrnet")
    assert sizes == [(448, 256), (896, 512), (1792, 1024)]
    # aidpose's rule rounds every scale from scale 1's (832, 512): 416 → 384 (round half to even), 1664
    assert inference_sizes((640, 425), 512, [0.5, 1.0, 2.0], 64, "aidpose")[1] == [
        (384, 256),
        (832, 512),
        (1664, 1024),
    ]
    # the region's short side is the image's (424 px between its first and last pixel centres)
    np.testing.assert_allclose(region, [447 * 424 / 255, 424])
    codec = AssociativeEmbeddingCodec(
        (512, 512), [(128, 128)], scales=[0.5, 1.0, 2.0], size_divisor=64, size_rule="higherhrnet"
    )
    images, matrices = codec.test_inputs(np.zeros((425, 640, 3), np.uint8))
    assert [image.shape for image in images] == [(3, 256, 448), (3, 512, 896), (3, 1024, 1792)]
    assert matrices.shape == (3, 2, 3)
    with pytest.raises(ValueError, match="size_rule"):
        inference_sizes((640, 425), 512, [1.0], 64, "mmpose")


def test_quarter_pixel_shift_and_person_tags_at_refined_joints() -> None:
    heat = np.zeros((1, 4, 5), np.float32)
    heat[0, 1, 2], heat[0, 1, 3], heat[0, 1, 1] = 1.0, 0.5, 0.2  # right higher; above = below = 0
    assert quarter_pixel_shift(heat, np.array([[[2.0, 1.0]]])).tolist() == [[[2.25, 0.75]]]
    # at the border the neighbour outside is the pixel itself: (2, 0) compares (2, 1) with (2, 0) in y
    assert quarter_pixel_shift(heat, np.array([[[2.0, 0.0]]])).tolist() == [[[1.75, 0.25]]]
    tags = np.zeros((2, 4, 5, 1), np.float32)
    tags[0, 1, 2], tags[1, 3, 4], tags[1, 0, 0] = 2.0, 4.0, 9.0
    # joint 0 at (2.7, 1.2) reads pixel (2, 1); joint 1 at (5.5, 3.9) is clipped to (4, 3); a missing joint
    # (heat 0) does not count
    keypoints = np.array([[[2.7, 1.2, 0.9], [5.5, 3.9, 0.4]], [[2.7, 1.2, 0.9], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(person_tags_at(tags, keypoints), [[3.0], [2.0]])


def test_dark_before_or_after_filling_moves_the_filled_joint_differently() -> None:
    """Joint 0 found at a pixel-centred peak, joint 1 too weak to group (0.08 < detection_threshold) and filled."""
    heat = encode_bottomup_heatmaps(np.array([[[2.0, 2.0], [5.3, 4.0]]]), np.array([[2, 2]]), (12, 10), 1.0)
    heat[1] *= 0.08
    tags = np.zeros((2, 10, 12, 1), np.float32)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

    def decode(dark_before_fill: bool) -> np.ndarray:
        codec = AssociativeEmbeddingCodec(
            (48, 40), [(12, 10)], dark_before_fill=dark_before_fill, nms_kernel=3
        )
        prediction = codec.decode((heat, tags), identity)
        # the person's score: joint 0's heat over 2 joints, before filling
        assert prediction.scores.tolist() == pytest.approx([0.5])
        return prediction.keypoints[0]

    after, before = decode(False), decode(True)
    peak = 0.08 * np.exp(-(0.3**2) / 2)  # joint 1's heat at its maximum pixel (5, 4)
    # fill, then DARK-UDP on every joint: joint 1 back at its sub-pixel centre
    np.testing.assert_allclose(after[1], [5.3, 4.0, peak], atol=0.05)
    # DARK-UDP, then fill: joint 1 at its maximum (5, 4) plus a quarter pixel towards the higher neighbour in x
    # (6 is 0.7 from 5.3, 4 is 1.3) and minus a quarter in y (rows 3 and 5 are equally high)
    np.testing.assert_allclose(before[1], [5.25, 3.75, peak], rtol=1e-5)
    np.testing.assert_allclose(before[0], [2.0, 2.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(after[0], before[0], atol=1e-4)


def test_encode_decode_round_trip_recovers_keypoints_in_image_pixels() -> None:
    """People encoded in a warped image, decoded with ideal tags, come back through the inverse affine."""
    rng = np.random.default_rng(2)
    num_people, k = 6, 17
    image_size = (700, 500)
    ((matrix, input_size),) = inference_warps(image_size, 256, [1.0])
    codec = AssociativeEmbeddingCodec(
        input_size,
        [(input_size[0] // 4, input_size[1] // 4), (input_size[0] // 2, input_size[1] // 2)],
        flip_test=False,
    )
    cells = np.stack(np.meshgrid(np.arange(3), np.arange(2)), -1).reshape(-1, 2)
    people = cells[:, None, :] * np.array([230.0, 245.0]) + rng.uniform(10, 220, (num_people, k, 2))
    visible = np.full((num_people, k), 2)
    visible[0, 3] = visible[4, 10] = 0
    xy = apply_affine(people, matrix)
    targets = codec.encode(xy, visible)
    # ideal network outputs: the targets, tags = person index · 2 around every joint at 1/4
    quarter_size = codec.heatmap_sizes[0]
    q = xy / udp_stride(input_size, quarter_size)
    tags = np.zeros((k, quarter_size[1], quarter_size[0]), np.float32)
    for p in range(num_people):
        for j in range(k):
            x, y = np.floor(q[p, j] + 0.5).astype(int)
            tags[j, max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4] = 2.0 * p
    quarter = torch.from_numpy(np.concatenate([targets["heatmaps"][0], tags]))[None]
    half = torch.from_numpy(targets["heatmaps"][1])[None]
    heatmaps, tag_maps = codec.merge_outputs([quarter, half], k)
    half_size = codec.heatmap_sizes[1]
    to_image = heatmap_to_image_matrix(matrix, input_size, half_size)
    prediction = codec.decode((heatmaps[0], tag_maps[0]), to_image)
    assert prediction.keypoints.shape == (num_people, k, 3)
    for p in range(num_people):
        match = np.abs(prediction.keypoints[:, visible[p] > 0, :2] - people[p][visible[p] > 0]).max(
            axis=(1, 2)
        )
        assert match.min() < 0.5, f"person {p} off by {match.min():.3f} image px"
    # people with a missing joint score lower (mean over all joints) and rank last
    assert sorted(prediction.scores.tolist(), reverse=True) == prediction.scores.tolist()


def test_dark_udp_refinement_is_exact_for_a_gaussian_peak() -> None:
    hm = encode_bottomup_heatmaps(np.array([[[20.3, 11.7]]]), np.array([[2]]), (40, 30), 2.0)
    refined = refine_dark_udp(hm, np.array([[[20.0, 12.0]]]), blur_kernel_size=3)
    np.testing.assert_allclose(refined[0, 0], [20.3, 11.7], atol=0.05)


def test_codec_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="with_tags"):
        AssociativeEmbeddingCodec((64, 64), [(16, 16)], with_tags=[False])
    with pytest.raises(ValueError, match="scales"):
        AssociativeEmbeddingCodec((64, 64), [(16, 16)], scales=[])
    with pytest.raises(ValueError, match="blur_kernel"):
        AssociativeEmbeddingCodec((64, 64), [(16, 16)], blur_kernel=4)
    with pytest.raises(ValueError, match="size_rule"):
        AssociativeEmbeddingCodec((64, 64), [(16, 16)], size_rule="mmpose")
