"""``python -m aidpose.predict``, its boxes and crops (``aidpose.inference``, ``aidpose.geometry.inference``) and
its drawing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aidpose.data.keypoints import COCO
from aidpose.drawing import draw_poses
from aidpose.geometry.affine import apply_affine
from aidpose.geometry.inference import crop_boxes
from aidpose.inference import filter_boxes, whole_image_box
from aidpose.predict import image_ids, list_images, read_boxes
from tests.helpers import run_cli


def test_crop_matrices_map_the_crop_centre_to_the_box_centre():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    image[60, 30] = (0, 0, 255)  # a red pixel at the box centre (x=30, y=60) in BGR
    crops, inverse = crop_boxes(image, np.array([[10.0, 20.0, 40.0, 80.0]]), (48, 64), padding=1.25)
    assert crops.shape == (1, 3, 64, 48) and inverse.shape == (1, 2, 3)
    # UDP: the crop centre ((48 - 1) / 2, (64 - 1) / 2) is the box centre
    np.testing.assert_allclose(apply_affine(np.array([[23.5, 31.5]]), inverse[0]), [[30.0, 60.0]], atol=1e-4)
    # box 40×80 at aspect 0.75 → 60×80, ×1.25 padding → 75×100 image px on 47×63 crop px: corner (0, 0) ↦
    np.testing.assert_allclose(apply_affine(np.array([[0.0, 0.0]]), inverse[0]), [[-7.5, 10.0]], atol=1e-4)
    assert crops[0, 0].max() > 0 and crops[0, 2].max() == 0  # RGB crops: red in channel 0


def test_filter_boxes_as_evaluation_filters_detections():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 4, 4], [-20, -20, 10, 10], [40, 40, 30, 30]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    kept, kept_scores, counts = filter_boxes(boxes, scores, (50, 60), score_thr=0.5, min_area=20)
    # box 0 clipped to the last pixel centres: (0, 0)–(10, 10); box 1 is 16 px² < 20; box 2 lies outside
    np.testing.assert_allclose(kept, [[0, 0, 10, 10]])
    np.testing.assert_allclose(kept_scores, [0.9])
    assert counts == {"skipped_low_score": 1, "skipped_empty_box": 1, "skipped_small_box": 1}
    np.testing.assert_allclose(whole_image_box(640, 480), [[0, 0, 640, 480]])


def test_read_boxes_coco_detection_results(tmp_path):
    files = [tmp_path / "000000000785.jpg", tmp_path / "cat.jpg"]
    dets = [
        {"image_id": 785, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9},
        {"image_id": 785, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.9},
        {"image_id": 9, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9},
    ]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    counts = Counter()
    table = read_boxes(tmp_path / "dets.json", files, counts)
    assert list(table) == ["000000000785.jpg"]
    boxes, scores = table["000000000785.jpg"]
    np.testing.assert_allclose(boxes, [[1, 2, 3, 4]])
    np.testing.assert_allclose(scores, [0.9])
    assert counts == {"boxes_in_file": 3, "skipped_non_person": 1, "skipped_unknown_image": 1}


def test_read_boxes_by_file_name_and_errors(tmp_path):
    files = [tmp_path / "a.jpg"]
    (tmp_path / "boxes.json").write_text(
        json.dumps({"a.jpg": [[1, 2, 3, 4], [5, 6, 7, 8, 0.5]], "b.jpg": [[0, 0, 1, 1]]})
    )
    counts = Counter()
    boxes, scores = read_boxes(tmp_path / "boxes.json", files, counts)["a.jpg"]
    np.testing.assert_allclose(boxes, [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_allclose(scores, [1.0, 0.5])
    assert counts == {"boxes_in_file": 3, "skipped_unknown_image": 1}
    (tmp_path / "bad.json").write_text(json.dumps({"a.jpg": [[1, 2, 3]]}))
    with pytest.raises(ValueError, match=r"'a\.jpg'.*\[x, y, w, h\]"):
        read_boxes(tmp_path / "bad.json", files, Counter())
    (tmp_path / "bad2.json").write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3, 4]}]))
    with pytest.raises(ValueError, match=r"entry 0.*category_id"):
        read_boxes(tmp_path / "bad2.json", files, Counter())


def test_image_ids_and_listing(tmp_path, coco_mini):
    assert image_ids([Path("000000000785.jpg"), Path("12.png")]) == [785, 12]
    assert image_ids([Path("785.jpg"), Path("cat.jpg")]) == [1, 2]
    assert [f.name for f in list_images(coco_mini)][:2] == ["000000000785.jpg", "000000040083.jpg"]
    with pytest.raises(FileNotFoundError, match="holds no images"):
        list_images(tmp_path)


def test_draw_poses_draws_only_confident_keypoints():
    image = np.zeros((60, 60, 3), dtype=np.uint8)
    pose = np.zeros((1, 17, 3))
    pose[0, :, :2] = 30.0
    assert draw_poses(image, pose, COCO, score_thr=0.3).max() == 0
    pose[0, 0] = (10.0, 12.0, 0.9)  # the nose (a centre keypoint, green)
    drawn = draw_poses(image, pose, COCO, score_thr=0.3)
    assert drawn[12, 10, 1] > 0 and drawn[50, 50].max() == 0 and image.max() == 0


@pytest.mark.slow
def test_predict_with_detector_boxes_equals_evaluation(tiny_checkpoint, coco_mini, eval_det_run, tmp_path):
    test = json.loads((eval_det_run / "metrics.json").read_text())["test"]
    out = tmp_path / "out"
    proc = run_cli(
        "aidpose.predict", f"ckpt_path={tiny_checkpoint}", f"input={coco_mini}", f"output={out}",
        f"boxes={coco_mini / 'test_coco_det_AP_H_56.json'}", f"test.nms={test['nms']}",
        f"test.det_score_thr={test['det_score_thr']}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictions = json.loads((out / "predictions.json").read_text())
    assert sorted(p.name for p in (out / "vis").iterdir()) == [
        f.stem + ".png" for f in list_images(coco_mini)
    ]
    assert {p["file_name"] for p in predictions} <= {f.name for f in list_images(coco_mini)}
    assert all(p["image_id"] == int(Path(p["file_name"]).stem) for p in predictions)
    # the same boxes, crops, decoding, rescoring and soft-OKS-NMS as aidpose.evaluate
    evaluated = json.loads((eval_det_run / "results.json").read_text())
    assert len(predictions) == len(evaluated)
    ours = sorted(predictions, key=lambda r: (r["image_id"], -r["score"]))
    theirs = sorted(evaluated, key=lambda r: (r["image_id"], -r["score"]))
    np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in theirs], atol=1e-4)
    np.testing.assert_allclose([r["keypoints"] for r in ours], [r["keypoints"] for r in theirs], atol=2e-3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and summary["persons"] == len(predictions)


@pytest.mark.slow
def test_predict_without_boxes_uses_the_whole_image(tiny_checkpoint, coco_mini, tmp_path):
    image = coco_mini / "000000000785.jpg"
    out = tmp_path / "out"
    proc = run_cli(
        "aidpose.predict", f"ckpt_path={tiny_checkpoint}", f"input={image}", f"output={out}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "each image is one person box, the whole image" in proc.stdout
    predictions = json.loads((out / "predictions.json").read_text())
    assert (
        len(predictions) == 1
        and predictions[0]["file_name"] == image.name
        and predictions[0]["image_id"] == 785
    )
    assert len(predictions[0]["keypoints"]) == 51
    assert (out / "vis" / "000000000785.png").stat().st_size > 0
