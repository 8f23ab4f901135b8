"""``python -m aidpose.evaluate``: a checkpoint's model rebuilt from its stored config, COCO results and metrics."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from pycocotools.coco import COCO

from aidpose.builders import config_from_checkpoint
from aidpose.data.keypoints import get_layout
from aidpose.evaluation.occlusion import format_occlusion_table, level_label
from aidpose.evaluation.results import topdown_results
from tests.helpers import CONF_DIR, run_cli

METRICS = {"AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis"}


def load_results(ann_file, results):
    """pycocotools' loadRes of the results (it asserts their image ids are in the annotation file)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann_file)).loadRes(results)


@pytest.mark.slow
def test_evaluate_writes_metrics_and_coco_results(eval_gt_run, coco_mini_odd, tiny_checkpoint):
    summary = json.loads((eval_gt_run / "metrics.json").read_text())
    results = json.loads((eval_gt_run / "results.json").read_text())
    assert set(summary["metrics"]) >= METRICS
    assert summary["dataset"] == "coco" and summary["ckpt_path"] == str(tiny_checkpoint)
    assert summary["data"]["instances"] == 11 and summary["world_size"] == 1
    # test options: the checkpoint's own (debug=fast trained with blur kernel 5), the metric of the dataset
    assert summary["codec"]["blur_kernel"] == 5 and summary["test"]["blur_kernel"] is None
    assert summary["test"]["dataset"] == "coco"
    assert summary["num_results"] == len(results) > 0
    assert {"image_id", "category_id", "keypoints", "score"} <= set(results[0])
    assert len(results[0]["keypoints"]) == 3 * 17
    coco_dt = load_results(coco_mini_odd / "test_coco.json", results)
    assert len(coco_dt.getAnnIds()) == len(results)


@pytest.mark.slow
def test_evaluate_with_detector_boxes(eval_det_run, coco_mini):
    summary = json.loads((eval_det_run / "metrics.json").read_text())
    results = json.loads((eval_det_run / "results.json").read_text())
    detections = json.loads((coco_mini / "test_coco_det_AP_H_56.json").read_text())
    confident = [d for d in detections if d["category_id"] == 1 and d["score"] >= 0.5]
    assert summary["test"]["boxes"] == "detections" and summary["test"]["nms"] == "soft_oks"
    assert summary["data"]["instances"] == len(confident) - summary["data"].get("skipped_empty_box", 0)
    # soft-OKS-NMS decays scores instead of dropping poses: with at most 20 boxes per image all stay
    assert len(results) == summary["data"]["instances"] > 0
    load_results(coco_mini / "test_coco.json", results)


@pytest.mark.slow
def test_bad_checkpoint_path_is_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "last.ckpt"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={missing}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert proc.returncode != 0
    assert f"checkpoint {missing} does not exist" in proc.stderr


def compose_evaluate(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def stored_run(test: dict) -> dict:
    """A minimal stored run config (what aidpose.train writes into checkpoints)."""
    return {
        "aidpose_config": {
            "dataset": {"name": "synthpose", "layout": "coco", "metric": "coco", "source": {}},
            "backbone": {"name": "resnet18", "pretrained": True, "weights": "/somewhere/r18.pth"},
            "loader": {"num_workers": 4, "val_batch_size": 64},
            "dropper": {"_target_": "aidpose.aid.Cutout"},
            "test": test,
            "paths": {"root": "/old/run"},
        }
    }


def test_test_options_come_from_the_checkpoint_then_the_command_line():
    cfg = compose_evaluate(["ckpt_path=x.ckpt", "test.flip=false", "test.nms=soft_oks", "num_workers=0"])
    ckpt = stored_run({"flip": True, "blur_kernel": 7, "nms": "oks", "dataset": "crowdpose"})
    run = config_from_checkpoint(ckpt, cfg, "x.ckpt", {"test.flip", "test.nms", "ckpt_path", "num_workers"})
    assert run.test.flip is False and run.test.nms == "soft_oks"  # command line
    assert run.test.blur_kernel == 7  # the checkpoint's (its heatmap sigma's kernel)
    assert run.test.soft_nms_thr == 0.3 and run.test.occlusion is None  # conf/test for keys it lacks
    assert run.test.dataset == "coco"  # the metric of the evaluated dataset, not the stored one
    assert run.backbone.pretrained is False and run.backbone.weights is None  # weights from the checkpoint
    assert run.dropper is None and run.task_name == "evaluate"
    assert run.loader.num_workers == 0 and run.loader.val_batch_size == 64
    assert run.trainer.devices == 1


def test_another_dataset_must_have_the_checkpoints_layout():
    cfg = compose_evaluate(["ckpt_path=x.ckpt", "dataset=coco"])
    ckpt = stored_run({})
    ckpt["aidpose_config"]["dataset"]["layout"] = "crowdpose"
    with pytest.raises(ValueError, match="predicts 'crowdpose' keypoints"):
        config_from_checkpoint(ckpt, cfg, "x.ckpt", {"dataset"})


def test_checkpoint_without_stored_config_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, path)
    cfg = compose_evaluate([f"ckpt_path={path}"])
    with pytest.raises(ValueError, match="has no 'aidpose_config'"):
        config_from_checkpoint(torch.load(path, weights_only=True), cfg, str(path))


def test_occlusion_table_rows():
    rows = [
        {"level": "clean", "occluded_area": 0.0, "dropped_kpt_frac": 0.0, "metrics": {"AP": 0.5, "AR": 0.6}},
        {"level": 0.25, "occluded_area": 0.125, "dropped_kpt_frac": 0.5, "metrics": {"AP": 0.25, "AR": 0.3}},
    ]
    lines = format_occlusion_table(rows).splitlines()
    assert lines[2].split() == ["clean", "0.00", "0.00", "0.5000", "nan", "nan", "0.6000"]
    assert lines[3].split() == ["0.25", "12.50", "50.00", "0.2500", "nan", "nan", "0.3000"]
    assert level_label(None) == "as is"


def two_identical_poses() -> dict:
    """Two predictions of one person in image 7 (identical keypoints, all confident), box scores 0.9 and 0.6."""
    keypoints = np.ones((2, 17, 3))
    keypoints[:, :, :2] = np.arange(34, dtype=float).reshape(17, 2) * 3
    return {
        "image_id": np.array([7, 7]),
        "keypoints": keypoints,
        "bbox_score": np.array([0.6, 0.9]),
        "area": np.array([900.0, 900.0]),
    }


def test_oks_nms_drops_and_soft_oks_nms_decays_the_duplicate():
    sigmas = get_layout("coco").sigmas
    kept = topdown_results(two_identical_poses(), sigmas=sigmas, nms="oks", nms_thr=0.9)
    assert [r["score"] for r in kept] == [0.9]  # OKS 1 > 0.9: dropped
    soft = topdown_results(
        two_identical_poses(), sigmas=sigmas, nms="soft_oks", nms_thr=0.9, soft_nms_thr=0.5
    )
    # Gaussian soft-NMS at its own threshold: 0.6 · exp(-OKS² / 0.5) with OKS = 1 (nms_thr is not used)
    assert [r["score"] for r in soft] == pytest.approx([0.9, 0.6 * np.exp(-1 / 0.5)])
    none = topdown_results(two_identical_poses(), sigmas=sigmas, nms="none")
    assert sorted(r["score"] for r in none) == pytest.approx([0.6, 0.9])
    assert all(r["image_id"] == 7 and len(r["keypoints"]) == 51 for r in soft)
