"""evaluate_results(dataset="coco") against pycocotools on the real COCO fixture and hand-built files."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from aidpose.data.keypoints import COCO as COCO_LAYOUT
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.visibility import keep_visibility

COCO_KEYS = ["AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"]


def pycocotools_stats(gt: dict[str, Any], results: list[dict[str, Any]]) -> np.ndarray:
    """COCOeval(iouType="keypoints").stats (-1 where undefined)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def assert_matches_pycocotools(gt: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    ours = evaluate_results(gt, results)
    np.testing.assert_allclose(
        [ours[k] for k in COCO_KEYS], pycocotools_stats(gt, results), rtol=0, atol=1e-9
    )
    return ours


@pytest.fixture(scope="module")
def coco_gt(coco_mini: Path) -> dict[str, Any]:
    return json.loads((coco_mini / "test_coco.json").read_text())


def pose(ann: dict[str, Any]) -> np.ndarray:
    """(17, 3) ground-truth keypoints with unlabelled ones moved to the box centre (a plausible guess)."""
    kpts = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
    x, y, w, h = ann["bbox"]
    kpts[kpts[:, 2] == 0, :2] = (x + w / 2, y + h / 2)
    return kpts


def result(image_id: int, kpts: np.ndarray, score: float) -> dict[str, Any]:
    kpts = kpts.copy()
    kpts[:, 2] = 0.9
    return {"image_id": image_id, "category_id": 1, "keypoints": kpts.ravel().tolist(), "score": score}


def perturbed_results(gt: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """1-3 noisy copies of every person (also unlabelled ones) and a few false positives per image."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt["annotations"]:
        for _ in range(rng.integers(1, 4)):
            kpts = pose(ann)
            kpts[:, :2] += rng.normal(0, rng.uniform(1, 25), (17, 2))
            out.append(result(ann["image_id"], kpts, float(rng.choice([0.5, rng.random()]))))
    for img in gt["images"]:
        for _ in range(rng.integers(0, 12)):
            kpts = np.c_[rng.uniform(0, img["width"], 17), rng.uniform(0, img["height"], 17), np.ones(17)]
            out.append(result(img["id"], kpts, float(rng.random())))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_perturbed_predictions_match_pycocotools(coco_gt: dict[str, Any], seed: int) -> None:
    ours = assert_matches_pycocotools(coco_gt, perturbed_results(coco_gt, seed))
    assert 0 < ours["AP"] < 1


def test_perfect_predictions_score_one(coco_gt: dict[str, Any]) -> None:
    results = [result(a["image_id"], pose(a), 1.0) for a in coco_gt["annotations"] if a["num_keypoints"] > 0]
    ours = assert_matches_pycocotools(coco_gt, results)
    assert all(v == 1.0 for v in ours.values()), ours


def test_swapped_left_right_matches_pycocotools_and_costs_ap(coco_gt: dict[str, Any]) -> None:
    flip = COCO_LAYOUT.flip_index
    results = [
        result(a["image_id"], pose(a)[flip], 1.0) for a in coco_gt["annotations"] if a["num_keypoints"] > 0
    ]
    ours = assert_matches_pycocotools(coco_gt, results)
    assert ours["AP"] < 0.9


def test_missing_detections_lower_recall(coco_gt: dict[str, Any]) -> None:
    labelled = [a for a in coco_gt["annotations"] if a["num_keypoints"] > 0]
    results = [result(a["image_id"], pose(a), 1.0) for a in labelled[::2]]
    ours = assert_matches_pycocotools(coco_gt, results)
    assert ours["AR"] == pytest.approx(len(results) / len(labelled))
    assert ours["AP"] < 1.0


def test_empty_results_give_zeros(coco_gt: dict[str, Any]) -> None:
    ours = evaluate_results(coco_gt, [])
    assert set(ours) == {*COCO_KEYS, "AP_vis", "AP_invis"}
    assert all(v == 0.0 for v in ours.values()), ours


def test_results_and_annotations_from_json_paths(
    coco_mini: Path, coco_gt: dict[str, Any], tmp_path: Path
) -> None:
    results = perturbed_results(coco_gt, 7)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert evaluate_results(coco_mini / "test_coco.json", path) == evaluate_results(coco_gt, results)


def hand_built_gt(annotations: list[dict[str, Any]], num_images: int = 2) -> dict[str, Any]:
    images = [{"id": i + 1, "width": 300, "height": 300} for i in range(num_images)]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def person(ann_id: int, image_id: int, x: float, y: float, size: float, **extra: Any) -> dict[str, Any]:
    rng = np.random.default_rng(ann_id)
    kpts = np.c_[x + rng.uniform(0, size / 2, 17), y + rng.uniform(0, size, 17), np.full(17, 2.0)]
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [x, y, size / 2, size],
        "area": size * size / 2 * 0.6,
        "iscrowd": 0,
        "keypoints": kpts.ravel().tolist(),
        "num_keypoints": 17,
    }
    return {**ann, **extra}


def test_score_ties_and_twenty_detection_cap_match_pycocotools() -> None:
    gt = hand_built_gt([person(1, 1, 10, 10, 120), person(2, 1, 150, 20, 100), person(3, 2, 50, 50, 80)])
    rng = np.random.default_rng(3)
    results = []
    for _ in range(30):  # more than maxDets=20 per image, many equal scores
        for ann in gt["annotations"]:
            kpts = np.array(ann["keypoints"]).reshape(17, 3)
            kpts[:, :2] += rng.normal(0, 6, (17, 2))
            results.append(result(ann["image_id"], kpts, float(rng.choice([0.3, 0.6, 0.9]))))
    assert_matches_pycocotools(gt, results)


def test_crowd_unlabelled_and_zero_id_annotations_match_pycocotools() -> None:
    unlabelled = person(5, 1, 200, 150, 60, num_keypoints=0, keypoints=[0] * 51)
    crowd = person(6, 2, 100, 100, 150, iscrowd=1)
    gt = hand_built_gt(
        [person(0, 1, 10, 10, 120), person(2, 1, 120, 20, 100), unlabelled, crowd, person(7, 2, 10, 10, 90)]
    )
    for seed in range(3):
        assert_matches_pycocotools(gt, perturbed_results(gt, seed))


def test_box_area_from_results_bbox_field_matches_pycocotools() -> None:
    gt = hand_built_gt([person(1, 1, 10, 10, 40), person(2, 1, 120, 20, 150), person(3, 2, 50, 50, 80)])
    results = perturbed_results(gt, 4)
    for i, res in enumerate(results):  # loadRes takes areas from boxes when results carry them
        res["bbox"] = [0, 0, 10 + 20 * (i % 7), 40]
    assert_matches_pycocotools(gt, results)


def split_file(gt: dict[str, Any], level: int) -> dict[str, Any]:
    """The AP_vis / AP_invis ground truth written out as a file pycocotools can read."""
    out = copy.deepcopy(gt)
    for ann in out["annotations"]:
        kpts = keep_visibility(np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3), level)
        ann["keypoints"] = kpts.ravel().tolist()
        ann["num_keypoints"] = int(np.count_nonzero(kpts[:, 2] > 0))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_visibility_ap_equals_pycocotools_on_split_files(coco_gt: dict[str, Any], seed: int) -> None:
    results = perturbed_results(coco_gt, seed)
    ours = evaluate_results(coco_gt, results)
    assert ours["AP_vis"] == pytest.approx(pycocotools_stats(split_file(coco_gt, 2), results)[0], abs=1e-12)
    assert ours["AP_invis"] == pytest.approx(pycocotools_stats(split_file(coco_gt, 1), results)[0], abs=1e-12)


def test_only_the_twenty_best_detections_of_an_image_count() -> None:
    gt = hand_built_gt([person(1, 1, 10, 10, 120)], num_images=1)
    far = np.c_[np.full(17, 280.0), np.full(17, 280.0), np.ones(17)]
    results = [result(1, far, 0.9) for _ in range(20)]
    results.append(result(1, np.array(gt["annotations"][0]["keypoints"]).reshape(17, 3), 0.1))
    ours = assert_matches_pycocotools(gt, results)
    assert ours["AR"] == 0.0  # the exact detection is the 21st by score
    assert assert_matches_pycocotools(gt, results[-2:])["AR"] == 1.0


def test_equal_scores_keep_results_order() -> None:
    """Two detections of one person with the same score: the first listed takes the match."""
    gt = hand_built_gt([person(1, 1, 10, 10, 120)], num_images=1)
    kpts = np.array(gt["annotations"][0]["keypoints"]).reshape(17, 3)
    good, poor = kpts.copy(), kpts.copy()
    poor[:, :2] += 9.0  # OKS between 0.5 and 0.95
    ours = assert_matches_pycocotools(gt, [result(1, good, 0.5), result(1, poor, 0.5)])
    assert ours["AP"] == pytest.approx(1.0)
    swapped = assert_matches_pycocotools(gt, [result(1, poor, 0.5), result(1, good, 0.5)])
    assert swapped["AP"] < 0.9
