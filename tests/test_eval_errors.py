"""Malformed results and annotation files give clear errors naming the offending entry."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aidpose.evaluation import evaluate_results


def gt_file(**ann_overrides: Any) -> dict[str, Any]:
    ann = {
        "id": 1,
        "image_id": 7,
        "category_id": 1,
        "bbox": [0, 0, 10, 20],
        "area": 150.0,
        "iscrowd": 0,
        "keypoints": [5, 5, 2] * 17,
        "num_keypoints": 17,
        **ann_overrides,
    }
    return {
        "images": [{"id": 7}, {"id": 8}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "person"}],
    }


def entry(**overrides: Any) -> dict[str, Any]:
    return {"image_id": 7, "category_id": 1, "keypoints": [5.0, 5.0, 1.0] * 17, "score": 0.9, **overrides}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            entry(keypoints=[5.0, 5.0, 1.0] * 16),
            r"results entry 2 \(image_id=7\) has 'keypoints' of length 48, expected 51",
        ),
        (
            entry(keypoints=[5.0, math.nan, 1.0] * 17),
            r"results entry 2 \(image_id=7\) has a NaN or infinite value in 'keypoints'",
        ),
        (entry(score=math.inf), r"results entry 2 \(image_id=7\) has a NaN or infinite value in 'score'"),
        (
            entry(image_id=12345),
            r"results entry 2 \(image_id=12345\) has image_id 12345, which the annotation file",
        ),
        (entry(category_id=3), r"results entry 2 \(image_id=7\) has category_id 3"),
        (entry(score="high"), r"results entry 2 \(image_id=7\) has a non-numeric 'score'"),
        (
            {"image_id": 8, "category_id": 1, "keypoints": [1.0] * 51},
            r"results entry 2 \(image_id=8\) has no 'score'",
        ),
        (entry(keypoints=None), r"results entry 2 \(image_id=7\) has a non-numeric 'keypoints'"),
    ],
)
def test_bad_entry_is_named(bad: dict[str, Any], message: str) -> None:
    results = [entry(), entry(image_id=8), bad, entry(keypoints=[0.0] * 51)]
    with pytest.raises(ValueError, match=message):
        evaluate_results(gt_file(), results)


def test_results_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="results must be a list"):
        evaluate_results(gt_file(), {"image_id": 7})


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mpii'"):
        evaluate_results(gt_file(), [], dataset="mpii")


def test_missing_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"annotation file .*nope\.json"):
        evaluate_results(tmp_path / "nope.json", [])
    with pytest.raises(FileNotFoundError, match=r"results file .*none\.json"):
        evaluate_results(gt_file(), tmp_path / "none.json")


def test_coco_needs_areas() -> None:
    gt = gt_file()
    del gt["annotations"][0]["area"]
    with pytest.raises(ValueError, match=r"annotation id=1 has no 'area'.*dataset='crowdpose'"):
        evaluate_results(gt, [entry()])


def test_annotation_with_wrong_keypoint_count() -> None:
    with pytest.raises(
        ValueError, match=r"annotation id=1 \(image_id=7\) has 42 keypoint values, expected 51"
    ):
        evaluate_results(gt_file(keypoints=[1, 1, 2] * 14), [entry()])


def test_annotation_of_unknown_image() -> None:
    with pytest.raises(ValueError, match=r"annotation id=1 .* not in the file's 'images' list"):
        evaluate_results(gt_file(image_id=99), [entry()])
