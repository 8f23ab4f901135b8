"""The aidpose-eval console script: scoring a COCO keypoint results file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aidpose.evaluation import evaluate_results
from aidpose.evaluation.cli import main


@pytest.fixture()
def results_file(coco_mini: Path, tmp_path: Path) -> Path:
    gt = json.loads((coco_mini / "test_coco.json").read_text())
    rng = np.random.default_rng(0)
    results = []
    for ann in gt["annotations"]:
        kpts = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        kpts[:, :2] += rng.normal(0, 4, (17, 2))
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": 1,
                "keypoints": kpts.ravel().tolist(),
                "score": float(rng.random()),
            }
        )
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return path


def test_json_output_equals_evaluate_results(coco_mini: Path, results_file: Path, capsys) -> None:
    ann_file = coco_mini / "test_coco.json"
    assert main([str(ann_file), str(results_file), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == evaluate_results(ann_file, results_file)


def test_table_output(coco_mini: Path, results_file: Path, capsys) -> None:
    assert main([str(coco_mini / "test_coco.json"), str(results_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert [line.split()[0] for line in lines[2:]] == [
        "AP",
        "AP50",
        "AP75",
        "APM",
        "APL",
        "AR",
        "AR50",
        "AR75",
        "ARM",
        "ARL",
        "AP_vis",
        "AP_invis",
    ]


def test_bad_input_exits_2_with_message(coco_mini: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]))
    assert main([str(coco_mini / "test_coco.json"), str(bad), "--json"]) == 2
    assert "results entry 0 (image_id=1)" in capsys.readouterr().err
