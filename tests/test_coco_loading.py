"""COCO annotation loading: instance filters and counts, detection boxes, clear errors on missing data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from aidpose.data.coco import load_instances


def _ann(ann_id: int, image_id: int, bbox: list[float], labelled: int = 17, iscrowd: int = 0) -> dict:
    keypoints = np.zeros((17, 3))
    keypoints[:labelled] = [30.0, 20.0, 2]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": bbox,
        "iscrowd": iscrowd,
        "area": bbox[2] * bbox[3],
        "num_keypoints": labelled,
        "keypoints": keypoints.ravel().tolist(),
    }


def write_tiny_coco(root: Path) -> tuple[Path, Path]:
    """Two 64×48 images; 5 annotations: 2 usable, 1 crowd, 1 without keypoints, 1 box outside its image."""
    images = root / "images"
    images.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(images / name), np.full((48, 64, 3), 128, np.uint8))
    dataset = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            _ann(10, 1, [-5.0, 2.0, 30.0, 60.0]),
            _ann(11, 2, [10.0, 10.0, 20.0, 20.0], labelled=3),
            _ann(12, 2, [0.0, 0.0, 64.0, 48.0], iscrowd=1),
            _ann(13, 2, [5.0, 5.0, 10.0, 10.0], labelled=0),
            _ann(14, 1, [70.0, 10.0, 10.0, 10.0]),
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    ann_file = root / "person_keypoints.json"
    ann_file.write_text(json.dumps(dataset))
    return ann_file, images


def test_coco_mini_ground_truth(coco_mini: Path) -> None:
    coco, records, summary = load_instances(coco_mini / "test_coco.json", coco_mini, num_keypoints=17)
    raw = json.loads((coco_mini / "test_coco.json").read_text())["annotations"]
    assert len(raw) == 14 and len(coco.getAnnIds()) == 14
    assert summary == {"annotations": 14, "images": 4, "instances": 12, "skipped_no_keypoints": 2}
    assert len(records) == 12 and records.keypoints.shape == (12, 17, 3)
    assert set(records.ann_id) == {a["id"] for a in raw if a["num_keypoints"] > 0}
    first = next(a for a in raw if a["id"] == records.ann_id[0])
    np.testing.assert_allclose(records.keypoints[0].ravel(), first["keypoints"])
    np.testing.assert_allclose(records.bbox[0], first["bbox"], rtol=1e-6)  # inside its image: unchanged
    np.testing.assert_allclose(records.area, records.bbox[:, 2] * records.bbox[:, 3])
    assert (records.score == 1).all() and all(Path(f).is_file() for f in records.file)


def test_filters_and_counts_on_a_tiny_dataset(tmp_path: Path) -> None:
    ann_file, images = write_tiny_coco(tmp_path)
    _, records, summary = load_instances(ann_file, images, num_keypoints=17)
    assert summary == {
        "annotations": 5,
        "images": 2,
        "instances": 2,
        "skipped_crowd": 1,
        "skipped_empty_box": 1,
        "skipped_no_keypoints": 1,
    }
    assert records.ann_id.tolist() == [10, 11]
    np.testing.assert_allclose(records.bbox[0], [0.0, 2.0, 25.0, 45.0])  # clipped to [0, 63] × [0, 47]


def test_detection_boxes_and_filters(coco_mini: Path) -> None:
    det_file = coco_mini / "test_coco_det_AP_H_56.json"
    detections = json.loads(det_file.read_text())
    _, all_boxes, summary = load_instances(
        coco_mini / "test_coco.json", coco_mini, num_keypoints=17, boxes="detections", det_file=det_file
    )
    assert len(all_boxes) == len(detections) == summary["detections"]
    assert (all_boxes.ann_id == -1).all() and not all_boxes.keypoints.any()
    np.testing.assert_allclose(np.sort(all_boxes.score), np.sort([d["score"] for d in detections]), rtol=1e-6)

    _, records, summary = load_instances(
        coco_mini / "test_coco.json",
        coco_mini,
        num_keypoints=17,
        boxes="detections",
        det_file=det_file,
        det_score_thr=0.2,
        min_box_area=32 * 32,
    )
    low = sum(d["score"] < 0.2 for d in detections)
    assert summary["skipped_low_score"] == low
    assert len(records) + summary["skipped_small_box"] == len(detections) - low
    assert (records.score >= 0.2).all() and (records.area >= 32 * 32).all()
    assert summary["skipped_small_box"] > 0


def test_detections_of_other_categories_and_images_are_counted(tmp_path: Path) -> None:
    ann_file, images = write_tiny_coco(tmp_path)
    det_file = tmp_path / "dets.json"
    det_file.write_text(
        json.dumps(
            [
                {"image_id": 1, "category_id": 1, "bbox": [1, 1, 20, 30], "score": 0.9},
                {"image_id": 1, "category_id": 3, "bbox": [1, 1, 20, 30], "score": 0.9},
                {"image_id": 99, "category_id": 1, "bbox": [1, 1, 20, 30], "score": 0.9},
                {"image_id": 2, "category_id": 1, "bbox": [80, 1, 20, 30], "score": 0.9},
            ]
        )
    )
    _, records, summary = load_instances(
        ann_file, images, num_keypoints=17, boxes="detections", det_file=det_file
    )
    assert len(records) == 1 and records.image_id.tolist() == [1]
    assert summary["skipped_non_person"] == 1 and summary["skipped_unknown_image"] == 1
    assert summary["skipped_empty_box"] == 1


def test_missing_annotation_file_says_how_to_get_the_data(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"person_keypoints_val2017\.json.*cocodataset\.org"):
        load_instances(tmp_path / "person_keypoints_val2017.json", tmp_path, num_keypoints=17)
    with pytest.raises(FileNotFoundError, match=r"python -m aidpose\.data\.synthpose --out DIR"):
        load_instances(tmp_path / "synthpose" / "train.json", tmp_path, num_keypoints=17)


def test_missing_image_folder_and_det_file(tmp_path: Path) -> None:
    ann_file, images = write_tiny_coco(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"image folder not found: .*nowhere"):
        load_instances(ann_file, tmp_path / "nowhere", num_keypoints=17)
    with pytest.raises(FileNotFoundError, match=r"detection results file not found: .*dets\.json"):
        load_instances(
            ann_file, images, num_keypoints=17, boxes="detections", det_file=tmp_path / "dets.json"
        )
    with pytest.raises(ValueError, match="det_file"):
        load_instances(ann_file, images, num_keypoints=17, boxes="detections")


def test_missing_image_files_raise_or_are_skipped(tmp_path: Path) -> None:
    ann_file, images = write_tiny_coco(tmp_path)
    (images / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 image files are missing, the first: .*b\.jpg"):
        load_instances(ann_file, images, num_keypoints=17)
    _, records, summary = load_instances(ann_file, images, num_keypoints=17, skip_unreadable_images=True)
    assert records.ann_id.tolist() == [10]
    assert summary["missing_images"] == 1 and summary["skipped_missing_image"] == 1


def test_layout_mismatch_and_bad_json_are_explained(tmp_path: Path) -> None:
    ann_file, images = write_tiny_coco(tmp_path)
    with pytest.raises(ValueError, match=r"has 17 keypoints but the layout has 14"):
        load_instances(ann_file, images, num_keypoints=14, layout="crowdpose")
    ann_file.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_instances(ann_file, images, num_keypoints=17)
