"""evaluate_results(dataset="crowdpose") against faster-coco-eval's keypoints_crowd (official semantics)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aidpose.data.keypoints import CROWDPOSE
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.crowdpose import box_area, crowd_level

KEYS = ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"]
CROWD_INDICES = (0.05, 0.19, 0.2, 0.5, 0.79, 0.8, 0.95)  # both sides of the 0.2 and 0.8 boundaries


def crowdpose_case(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A small CrowdPose-format file (14 keypoints, no 'area', crowdIndex per image) and noisy results."""
    rng = np.random.default_rng(seed)
    images, annotations, results = [], [], []
    for i, crowd_index in enumerate(CROWD_INDICES):
        image_id = 100 + i
        images.append({"id": image_id, "width": 400, "height": 300, "crowdIndex": crowd_index})
        for _ in range(rng.integers(1, 5)):
            w, h, x, y = rng.uniform(20, 150), rng.uniform(40, 200), rng.uniform(0, 250), rng.uniform(0, 100)
            kpts = np.c_[
                x + rng.random(14) * w, y + rng.random(14) * h, rng.choice([0, 1, 2], 14, p=[0.2, 0.3, 0.5])
            ]
            if rng.random() < 0.15:
                kpts[:, 2] = 0
            kpts[kpts[:, 2] == 0, :2] = 0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x, y, w, h],
                    "iscrowd": 0,
                    "keypoints": kpts.ravel().tolist(),
                    "num_keypoints": int((kpts[:, 2] > 0).sum()),
                }
            )
            for _ in range(rng.integers(0, 3)):
                det = kpts.copy()
                det[det[:, 2] == 0, :2] = (x + w / 2, y + h / 2)
                det[:, :2] += rng.normal(0, rng.uniform(1, 12), (14, 2))
                det[:, 2] = rng.random(14)
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": 1,
                        "keypoints": det.ravel().tolist(),
                        "score": float(rng.random()),
                    }
                )
        for _ in range(rng.integers(0, 4)):
            det = np.c_[rng.uniform(0, 400, 14), rng.uniform(0, 300, 14), rng.random(14)]
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": det.ravel().tolist(),
                    "score": float(rng.random()),
                }
            )
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    return gt, results


def oracle_stats(ann_file: Path, results: list[dict[str, Any]]) -> np.ndarray:
    """faster-coco-eval ``keypoints_crowd`` stats (a dev dependency; same numbers as xtcocotools here)."""
    fce = pytest.importorskip("faster_coco_eval")
    coco_gt = fce.COCO(str(ann_file))
    coco_dt = coco_gt.loadRes(copy.deepcopy(results))
    ev = fce.COCOeval_faster(
        coco_gt,
        coco_dt,
        iouType="keypoints_crowd",
        kpt_oks_sigmas=CROWDPOSE.sigmas.tolist(),
        use_area=False,
        print_function=lambda *args, **kwargs: None,
    )
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.all_stats[:9], dtype=np.float64)


@pytest.mark.parametrize("seed", range(4))
def test_crowdpose_matches_oracle(tmp_path: Path, seed: int) -> None:
    gt, results = crowdpose_case(seed)
    ann_file = tmp_path / "crowdpose.json"
    ann_file.write_text(json.dumps(gt))
    ours = evaluate_results(ann_file, results, dataset="crowdpose")
    assert list(ours) == KEYS
    np.testing.assert_allclose([ours[k] for k in KEYS], oracle_stats(ann_file, results), rtol=0, atol=1e-9)
    assert 0 < ours["AP"] < 1


def test_detections_in_a_split_without_people_match_the_oracle(tmp_path: Path) -> None:
    """The only easy image (crowdIndex < 0.2) has no annotated person but detections: AP_easy has no ground
    truth to score against (-1, as the oracle), and the other splits are scored as usual."""
    gt, results = crowdpose_case(0)
    easy = {i["id"] for i in gt["images"] if i["crowdIndex"] < 0.2}
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] not in easy]
    assert any(r["image_id"] in easy for r in results)
    ann_file = tmp_path / "crowdpose.json"
    ann_file.write_text(json.dumps(gt))
    ours = evaluate_results(ann_file, results, dataset="crowdpose")
    np.testing.assert_allclose([ours[k] for k in KEYS], oracle_stats(ann_file, results), rtol=0, atol=1e-9)
    assert ours["AP_easy"] == -1 and ours["AP_medium"] > 0


def test_crowd_level_split_boundaries() -> None:
    assert crowd_level(np.array(CROWD_INDICES)).tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_box_area_is_053_of_the_box() -> None:
    assert box_area(np.array([[5.0, 5.0, 10.0, 20.0]])).tolist() == [10 * 20 * 0.53]


def test_perfect_crowdpose_predictions_and_split_without_people() -> None:
    gt, _ = crowdpose_case(0)
    gt["images"].append(
        {"id": 999, "width": 10, "height": 10, "crowdIndex": 0.99}
    )  # hard split gains no people
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != 106 and a["num_keypoints"] > 0]
    results = []
    for ann in gt["annotations"]:
        kpts = np.array(ann["keypoints"]).reshape(14, 3)
        x, y, w, h = ann["bbox"]
        kpts[kpts[:, 2] == 0, :2] = (x + w / 2, y + h / 2)
        results.append(
            {"image_id": ann["image_id"], "category_id": 1, "keypoints": kpts.ravel().tolist(), "score": 1}
        )
    ours = evaluate_results(gt, results, dataset="crowdpose")
    hard_ids = {105, 106, 999}
    assert any(a["image_id"] in hard_ids for a in gt["annotations"])  # 105 keeps its people
    assert all(v == 1.0 for v in ours.values()), ours
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] not in hard_ids]
    results = [r for r in results if r["image_id"] not in hard_ids]
    ours = evaluate_results(gt, results, dataset="crowdpose")
    assert ours["AP_hard"] == -1  # no ground truth to score against: -1, as the official code
    assert ours["AP_easy"] == 1.0


def test_crowdpose_needs_crowd_index() -> None:
    gt, results = crowdpose_case(1)
    del gt["images"][0]["crowdIndex"]
    with pytest.raises(ValueError, match="crowdIndex"):
        evaluate_results(gt, results, dataset="crowdpose")
