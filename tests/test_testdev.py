"""COCO test-dev: a file of images only (``dataset.source.test_file``) + detector boxes → results in the COCO
results format the evaluation server scores, and no metric (no ground truth); ``aidpose.predict image_info=``."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aidpose.data.coco import has_annotations, load_coco, load_instances
from tests.conftest import run_evaluate
from tests.helpers import run_cli

RESULT_KEYS = {"image_id", "category_id", "keypoints", "score"}


def test_a_file_of_images_only_is_read_where_boxes_come_from_detections(coco_mini) -> None:
    info = coco_mini / "image_info_test.json"
    with pytest.raises(ValueError, match=r"dataset\.source\.test_file"):
        load_coco(info)
    coco = load_coco(info, images_only=True)
    assert not has_annotations(coco) and len(coco.imgs) == 4
    assert has_annotations(load_coco(coco_mini / "test_coco.json", images_only=True))
    with pytest.raises(ValueError, match=r"test\.boxes=detections"):
        load_instances(info, coco_mini, num_keypoints=17, boxes="gt")
    _, records, summary = load_instances(
        info,
        coco_mini,
        num_keypoints=17,
        boxes="detections",
        det_file=coco_mini / "test_coco_det_AP_H_56.json",
    )
    assert len(records) == summary["instances"] > 0 and not records.keypoints.any()


@pytest.mark.slow
def test_evaluate_on_test_dev_writes_the_submission_and_no_metric(
    tiny_checkpoint, coco_mini, coco_dataset_args, tmp_path
) -> None:
    run_dir = run_evaluate(
        tmp_path, tiny_checkpoint, *coco_dataset_args(coco_mini), "dataset.source.test_file=image_info_test.json",
        "dataset.source.test_images=.", "test.boxes=detections", f"test.det_file={coco_mini / 'test_coco_det_AP_H_56.json'}",
    )  # fmt: skip
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["metrics"] == {} and summary["ground_truth"] is False
    assert summary["ann_file"] == str(coco_mini / "image_info_test.json")
    results = json.loads((run_dir / "results.json").read_text())
    assert results and all(set(r) == RESULT_KEYS and len(r["keypoints"]) == 51 for r in results)
    assert {r["image_id"] for r in results} <= {785, 40083, 196141, 197388}
    # the same without a test file: the val split, scored
    missing = run_cli(
        "aidpose.evaluate", f"ckpt_path={tiny_checkpoint}", *coco_dataset_args(coco_mini),
        "dataset.source.test_file=nowhere.json", f"hydra.run.dir={tmp_path / 'missing'}", cwd=tmp_path,
    )  # fmt: skip
    assert missing.returncode != 0 and "test_ann" in missing.stderr and "nowhere.json" in missing.stderr


@pytest.mark.slow
def test_predict_with_an_image_info_file_writes_the_results_under_its_ids(
    tiny_checkpoint, coco_mini, tmp_path
):
    out = tmp_path / "pred"
    proc = run_cli(
        "aidpose.predict", f"ckpt_path={tiny_checkpoint}", f"input={coco_mini}", f"output={out}",
        f"image_info={coco_mini / 'image_info_test.json'}", f"boxes={coco_mini / 'test_coco_det_AP_H_56.json'}",
        "draw=false", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no metric is computed here" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    assert results == [{k: v for k, v in p.items() if k != "file_name"} for p in predictions]
    assert results and all(set(r) == RESULT_KEYS for r in results)
    detections = json.loads((coco_mini / "test_coco_det_AP_H_56.json").read_text())
    persons = Counter(d["image_id"] for d in detections if d["category_id"] == 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["image_info"] == str(coco_mini / "image_info_test.json") and summary["images"] == 4
    # the poses of the person boxes, under the image-info file's ids
    assert len(results) == summary["persons"] > 0 and {r["image_id"] for r in results} == set(persons)
