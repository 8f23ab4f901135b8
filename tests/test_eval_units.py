"""The pure pieces of the evaluation against hand-computed values (and pycocotools' computeOks)."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from aidpose.data.keypoints import COCO as COCO_LAYOUT
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.cocoeval import RECALL_THRESHOLDS, detection_flags, precision_recall
from aidpose.evaluation.matching import greedy_match, image_pairs, last_best_in_segment, top_detections
from aidpose.evaluation.oks import oks_matrix, oks_pairs
from aidpose.evaluation.results import rescore_by_keypoints
from aidpose.evaluation.visibility import keep_visibility

SIGMAS = COCO_LAYOUT.sigmas


def one_keypoint_gt(x: float, y: float, k: int = 0) -> np.ndarray:
    """(1, 17, 3) ground truth with only keypoint ``k`` labelled at (x, y)."""
    gt = np.zeros((1, 17, 3))
    gt[0, k] = (x, y, 2)
    return gt


def test_oks_single_keypoint_by_hand() -> None:
    dt = np.zeros((1, 17, 2))
    dt[0, 0] = (3.0, 4.0)  # 5 px from the nose at (0, 0)
    oks = oks_matrix(dt, one_keypoint_gt(0, 0), np.array([[0, 0, 10, 10]]), np.array([100.0]), SIGMAS)
    # e = 5^2 / (2 * 0.026)^2 / 100 / 2 = 25 / 0.002704 / 200 = 46.2278...
    assert oks[0, 0] == pytest.approx(math.exp(-25 / 0.002704 / 200), rel=1e-12)
    dt[0, 0] = (0.0, 0.0)
    assert (
        oks_matrix(dt, one_keypoint_gt(0, 0), np.array([[0, 0, 10, 10]]), np.array([100.0]), SIGMAS)[0, 0]
        == 1
    )


def test_oks_averages_over_labelled_keypoints_only() -> None:
    gt = one_keypoint_gt(10, 10, k=11)
    gt[0, 12] = (20, 10, 1)  # occluded but labelled: counts
    dt = np.zeros((1, 17, 2))
    dt[0, 11], dt[0, 12] = (10, 10), (20, 10 + 2 * 0.107 * 10)  # exact, and one (2 sigma sqrt(area)) away
    oks = oks_matrix(dt, gt, np.array([[0, 0, 30, 30]]), np.array([100.0]), SIGMAS)
    assert oks[0, 0] == pytest.approx((1 + math.exp(-0.5)) / 2, rel=1e-9)


def test_oks_without_labelled_keypoints_uses_distance_to_enlarged_box() -> None:
    gt = np.zeros((1, 17, 3))
    box = np.array([[100.0, 100.0, 20.0, 40.0]])  # enlarged box: x in [80, 140], y in [60, 180]
    inside = np.tile([[120.0, 150.0]], (1, 17, 1))
    assert oks_matrix(inside, gt, box, np.array([50.0]), SIGMAS)[0, 0] == 1.0
    outside = inside.copy()
    outside[0, :, 0] = 143.0  # 3 px right of the enlarged box
    e = 9 / (2 * SIGMAS) ** 2 / 50 / 2
    assert oks_matrix(outside, gt, box, np.array([50.0]), SIGMAS)[0, 0] == pytest.approx(
        np.exp(-e).mean(), rel=1e-12
    )


def test_oks_matrix_is_bitwise_pycocotools_compute_oks() -> None:
    rng = np.random.default_rng(0)
    gts, dts = [], []
    for j in range(6):
        kpts = np.c_[rng.uniform(0, 200, (17, 2)), rng.choice([0, 1, 2], 17)]
        if j == 5:
            kpts[:, 2] = 0  # no labelled keypoints: the box rule
        gts.append(
            {
                "id": j + 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "area": float(rng.uniform(500, 9000)),
                "bbox": [float(v) for v in rng.uniform(10, 90, 4)],
                "keypoints": kpts.ravel().tolist(),
                "num_keypoints": int((kpts[:, 2] > 0).sum()),
            }
        )
    for _ in range(9):
        kpts = np.c_[rng.uniform(0, 200, (17, 2)), rng.random(17)]
        dts.append(
            {
                "image_id": 1,
                "category_id": 1,
                "keypoints": kpts.ravel().tolist(),
                "score": float(rng.random()),
            }
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": 1}], "annotations": gts, "categories": [{"id": 1}]}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dts), "keypoints")
        ev.params.imgIds = [1]
        ev._prepare()
        expected = ev.computeOks(1, 1)
    order = np.argsort([-d["score"] for d in dts], kind="mergesort")
    dt_xy = np.array([dts[i]["keypoints"] for i in order]).reshape(-1, 17, 3)[..., :2]
    gt_kpts = np.array([g["keypoints"] for g in gts], dtype=np.float64).reshape(-1, 17, 3)
    ours = oks_matrix(
        dt_xy, gt_kpts, np.array([g["bbox"] for g in gts]), np.array([g["area"] for g in gts]), SIGMAS
    )
    assert np.array_equal(ours, expected)
    pair_dt, pair_gt = np.divmod(np.arange(54), 6)
    blocked = oks_pairs(
        dt_xy,
        gt_kpts,
        np.array([g["bbox"] for g in gts]),
        np.array([g["area"] for g in gts]),
        SIGMAS,
        pair_dt,
        pair_gt,
        block=5,
    )
    assert np.array_equal(blocked, expected.ravel())


def test_top_detections_keeps_twenty_per_image_with_stable_ties() -> None:
    image = np.array([1, 0, 1, 0, 0])
    score = np.array([0.5, 0.2, 0.9, 0.2, 0.7])
    assert top_detections(image, score, 2).tolist() == [4, 1, 2, 0]  # image 0: 0.7, then the first 0.2


def test_image_pairs_lists_same_image_pairs() -> None:
    pair_dt, pair_gt = image_pairs(np.array([0, 0, 2]), np.array([0, 1, 2, 2]), 3)
    assert list(zip(pair_dt.tolist(), pair_gt.tolist(), strict=True)) == [(0, 0), (1, 0), (2, 2), (2, 3)]


def test_last_best_in_segment_prefers_the_later_of_equal_values() -> None:
    values = np.array([0.7, 0.9, 0.9, 0.2, 0.4])
    mask = np.array([True, True, True, False, False])
    assert last_best_in_segment(mask, values, np.array([0, 3])).tolist() == [2, -1]


def match(oks: np.ndarray, ignore: list[bool], crowd: list[bool], thresholds: list[float]) -> np.ndarray:
    """greedy_match on one image whose (D, G) OKS matrix is given; detections already in score order."""
    num_dt, num_gt = oks.shape
    pair_dt, pair_gt = np.divmod(np.arange(num_dt * num_gt), num_gt)
    return greedy_match(
        oks.ravel(),
        pair_dt,
        pair_gt,
        np.arange(num_dt),
        np.array([ignore]),
        np.array(crowd),
        np.array(thresholds),
        num_dt,
    )[0]


def test_greedy_match_by_hand() -> None:
    oks = np.array([[0.8, 0.9, 0.95], [0.85, 0.6, 0.1], [0.7, 0.2, 0.1]])
    # gt 2 is ignored: dt 0 takes regular gt 1 (0.9) over the better ignored gt 2; dt 1 takes gt 0;
    # dt 2 finds gt 0 and gt 1 taken and the ignored gt 2 below the threshold.
    assert match(oks, [False, False, True], [False, False, False], [0.5]).tolist() == [[1, 0, -1]]
    # at 0.92 no regular gt qualifies for dt 0, so it lands on the ignored gt 2.
    assert match(oks, [False, False, True], [False, False, False], [0.92]).tolist() == [[2, -1, -1]]


def test_greedy_match_crowd_absorbs_many_and_ties_go_to_later_gt() -> None:
    oks = np.array([[0.9, 0.9, 0.6], [0.9, 0.9, 0.6], [0.1, 0.1, 0.6]])
    assert match(oks, [False, False, True], [False, False, True], [0.5]).tolist() == [[1, 0, 2]]
    assert match(oks, [True, True, True], [True, True, True], [0.5]).tolist() == [[1, 1, 2]]


def test_detection_flags_inherit_gt_ignore_and_area_rule() -> None:
    matched_gt = np.array([[[0, 1, -1, -1]]])  # one area range, one threshold, four detections
    gt_ignore = np.array([[False, True]])
    dt_area = np.array([10.0, 10.0, 5000.0, 10.0])
    matched, ignored = detection_flags(
        matched_gt, gt_ignore, np.array([True, True]), dt_area, [(32**2, 96**2)]
    )
    assert matched.tolist() == [[[True, True, False, False]]]
    assert ignored.tolist() == [[[False, True, False, True]]]  # unmatched and too small: ignored
    matched, _ = detection_flags(matched_gt, gt_ignore, np.array([False, True]), dt_area, [(0, 1e10)])
    assert matched.tolist() == [[[False, True, False, False]]]  # a match to annotation id 0 does not count


def test_precision_recall_by_hand() -> None:
    score = np.array([0.7, 0.9, 0.8])
    matched = np.array([[[True, True, False]]])  # by score: tp (0.9), fp (0.8), tp (0.7)
    precision, recall = precision_recall(score, matched, np.zeros_like(matched), np.array([2]))
    # recall 0.5, 0.5, 1; precision 1, 1/2, 2/3 -> envelope 1, 2/3, 2/3
    expected = np.where(RECALL_THRESHOLDS <= 0.5, 1.0, 2 / 3)
    np.testing.assert_allclose(precision[0, :, 0], expected, rtol=1e-12)
    assert recall[0, 0] == 1.0
    precision, recall = precision_recall(score, matched, np.zeros_like(matched), np.array([0]))
    assert (precision == -1).all() and (recall == -1).all()


def test_keep_visibility() -> None:
    kpts = np.array([[[1, 2, 2], [3, 4, 1], [5, 6, 0]]], dtype=np.float64)
    assert keep_visibility(kpts, 2)[0, :, 2].tolist() == [2, 0, 0]
    assert keep_visibility(kpts, 1)[0, :, 2].tolist() == [0, 1, 0]
    assert kpts[0, :, 2].tolist() == [2, 1, 0]  # input untouched


def test_visibility_ap_on_hand_built_case() -> None:
    """Person A: 3 visible + 2 occluded keypoints; person B: visible only.

    The detection of A is exact on A's visible keypoints and far off on the occluded ones, so A is a
    true positive in the visible split and a false positive in the occluded one (AP_invis = 0). B has
    nothing left in the occluded split: ignored there, so its exact detection is neither TP nor FP.
    """
    kpts_a = np.zeros((17, 3))
    kpts_a[[5, 6, 11]] = [[50, 50, 2], [70, 50, 2], [55, 90, 2]]
    kpts_a[[13, 14]] = [[55, 120, 1], [70, 120, 1]]
    kpts_b = np.zeros((17, 3))
    kpts_b[[5, 6]] = [[200, 50, 2], [220, 50, 2]]
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [40, 40, 40, 90],
                "area": 3000.0,
                "iscrowd": 0,
                "keypoints": kpts_a.ravel().tolist(),
                "num_keypoints": 5,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [190, 40, 40, 90],
                "area": 3000.0,
                "iscrowd": 0,
                "keypoints": kpts_b.ravel().tolist(),
                "num_keypoints": 2,
            },
        ],
    }
    det_a = kpts_a.copy()
    det_a[[13, 14], :2] += 60  # occluded keypoints badly wrong
    det_b = kpts_b.copy()
    det_b[kpts_b[:, 2] == 0, :2] = (210, 85)  # unlabelled joints guessed inside B's box
    results = [
        {"image_id": 1, "category_id": 1, "keypoints": det_a.ravel().tolist(), "score": 0.9},
        {"image_id": 1, "category_id": 1, "keypoints": det_b.ravel().tolist(), "score": 0.8},
    ]
    metrics = evaluate_results(gt, results)
    assert metrics["AP_vis"] == 1.0
    assert metrics["AP_invis"] == 0.0
    assert 0 < metrics["AP"] < 1  # on all keypoints A's OKS is ~0.6: matched only at low thresholds


def test_rescore_by_keypoints_by_hand() -> None:
    scores = rescore_by_keypoints(
        np.array([0.8, 0.5]), np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.15]]), thr=0.2
    )
    np.testing.assert_allclose(scores, [0.8 * 0.7, 0.0])
