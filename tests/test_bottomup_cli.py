"""Bottom-up end to end through the CLI: a 2-job multirun of debug=fast (droppers none and has), evaluate,
diagnose and predict on its first job's checkpoint (one test: the runs are most of its time); S3's two stages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import COCO_MINI
from tests.helpers import REPO_ROOT, cli_env, run_cli

pytestmark = pytest.mark.slow


def test_bottomup_multirun_then_evaluate_and_predict(tmp_path):
    """A 2-job multirun (dropper=none,has); job 0 (`paradigm=bottomup debug=fast`) evaluated and predicted."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "aidpose.train", "-m", "paradigm=bottomup", "debug=fast", "dropper=none,has", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    fractions = {}
    for job, dropper in zip(jobs, ["none", "has"], strict=True):
        summary = json.loads((sweep / job / "metrics.json").read_text())
        assert summary["choices"]["dropper"] == dropper and summary["choices"]["paradigm"] == "bottomup"
        fractions[dropper] = summary["aid_dropped_kpt_frac"]
    assert fractions["none"] == 0.0 and 0.0 < fractions["has"] < 1.0  # Hide-and-Seek hides whole-image cells

    run_dir = sweep / "0"
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert set(summary["metrics"]) >= {"AP", "AP50", "AR", "AP_vis", "AP_invis"}
    assert (
        summary["choices"]["paradigm"] == "bottomup" and summary["choices"]["paradigm/head"] == "higherhrnet"
    )
    assert summary["choices"]["experiment"] == "synthpose_cpu_bottomup" and summary["epochs"] == 1
    assert "debug_paradigm" not in summary["choices"]  # derived, not chosen
    assert summary["aid_dropped_kpt_frac"] == 0.0  # dropper=none: counted, nothing dropped
    ckpt_path = run_dir / "last.ckpt"
    stored = torch.load(ckpt_path, map_location="cpu", weights_only=True)["aidpose_config"]
    assert stored["paradigm"]["name"] == "bottomup" and stored["dataset"]["source"]["preset"] == "crowd"

    eval_dir = tmp_path / "eval"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={ckpt_path}", "test.scales=[0.5,1,2]", f"hydra.run.dir={eval_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((eval_dir / "metrics.json").read_text())
    assert evaluated["codec"]["scales"] == [0.5, 1.0, 2.0] and evaluated["codec"]["flip_test"] is True
    assert evaluated["data"]["images"] == 6 and "AP" in evaluated["metrics"]
    assert json.loads((eval_dir / "results.json").read_text()) == []  # one epoch of 2 batches finds no one
    # COCO test-dev's way: a file of images only, no boxes needed; results written, no metric
    testdev_dir = tmp_path / "testdev"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={ckpt_path}", "dataset=coco", f"dataset.source.root={COCO_MINI}",
        "dataset.source.train_ann=test_coco.json", "dataset.source.val_ann=test_coco.json",
        "dataset.source.train_images=.", "dataset.source.val_images=.", "dataset.source.test_file=image_info_test.json",
        "dataset.source.test_images=.", f"hydra.run.dir={testdev_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no metric can be computed without ground truth" in proc.stdout
    testdev = json.loads((testdev_dir / "metrics.json").read_text())
    assert testdev["metrics"] == {} and testdev["ground_truth"] is False and testdev["data"]["images"] == 4
    results = json.loads((testdev_dir / "results.json").read_text())
    assert all(set(r) == {"image_id", "category_id", "keypoints", "score"} for r in results)
    assert {r["image_id"] for r in results} <= {785, 40083, 196141, 197388}
    proc = run_cli("aidpose.evaluate", f"ckpt_path={ckpt_path}", "test.occlusion=cutout", cwd=tmp_path)
    assert proc.returncode != 0 and "evaluate it without test.occlusion" in proc.stderr
    script = REPO_ROOT / "scripts" / "diagnose_bottomup.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(ckpt_path), "--images", "3"],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    diagnosis = json.loads(proc.stdout)
    assert diagnosis["images"] == 3 and diagnosis["model"]["people_found"] == 0  # as evaluate: no one found
    assert diagnosis["oracle"]["AP"] > 0.5 and diagnosis["left_right"]["pairs"] > 0

    images = sorted((tmp_path / "data" / "synthpose").glob("synthpose-crowd-*/images/val*/*"))[:2]
    out = tmp_path / "pred"
    proc = run_cli(
        "aidpose.predict",
        f"ckpt_path={ckpt_path}",
        f"input={images[0].parent}",
        f"output={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["images"] == 6
    assert len(list((out / "vis").glob("*.png"))) == 6
    proc = run_cli(
        "aidpose.predict", f"ckpt_path={ckpt_path}", f"input={images[0]}", f"boxes={images[0]}", f"output={out}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0 and "finds every person without boxes" in proc.stderr


def test_bottomup_s3_two_stages(tmp_path):
    """schedule=bottomup_s3: stage 1 without the dropper, stage 2 with it from stage 1's final weights."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        "aidpose.train", "paradigm=bottomup", "debug=fast", "schedule=bottomup_s3", "dropper=has", "logger=none",
        "trainer.limit_train_batches=1", "+callbacks.start._target_=tests.helpers.save_start_weights",
        f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["choices"]["schedule"] == "bottomup_s3" and summary["stage"] == "stage2"
    assert summary["stages"]["stage1"]["run_dir"] == str(run_dir / "stage1")
    stage1, stage2 = (json.loads((run_dir / s / "metrics.json").read_text()) for s in ("stage1", "stage2"))
    assert stage1["aid_dropped_kpt_frac"] == 0.0 < stage2["aid_dropped_kpt_frac"]  # the dropper: stage 2 only

    def load(stage: str, name: str) -> dict:
        return torch.load(run_dir / stage / name, map_location="cpu", weights_only=True)

    first, second = load("stage1", "last.ckpt"), load("stage2", "last.ckpt")
    assert (first["aidpose_stage"], second["aidpose_stage"]) == ("stage1", "stage2")
    assert first["aidpose_config"]["dropper"] is None and second["aidpose_config"]["dropper"] is not None
    trained = first["state_dict"]
    start1, start2 = load("stage1", "start_weights.pt"), load("stage2", "start_weights.pt")
    assert not all(torch.equal(v, trained[k]) for k, v in start1.items())  # stage 1 moved its weights
    assert start2.keys() == trained.keys() and all(torch.equal(v, trained[k]) for k, v in start2.items())
