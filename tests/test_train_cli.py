"""End-to-end training through the CLI (``python -m aidpose.train``) on a tiny SynthPose."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def test_debug_fast_run_writes_metrics_and_checkpoint(tiny_run):
    run_dir = tiny_run.run_dir  # `python -m aidpose.train debug=fast` (tests/conftest.py), exit code 0
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert set(summary["metrics"]) >= {"AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis"}
    assert summary["choices"]["backbone"] == "hrnet_w18_small"
    assert summary["choices"]["dropper"] == "none"
    assert summary["epochs"] == 1
    ckpt = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["aidpose_config"]["dataset"]["name"] == "synthpose"
    assert (run_dir / "csv").is_dir()
    assert "[aidpose] run folder:" in tiny_run.stdout


def test_missing_dataset_folder_is_one_clear_error(tmp_path):
    proc = run_cli(
        "aidpose.train", "dataset=coco", f"dataset.source.root={tmp_path / 'nowhere'}", "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"{tmp_path / 'nowhere' / 'annotations'}" in proc.stderr
    assert "Set dataset.source.root=DIR" in proc.stderr and "cocodataset.org" in proc.stderr


def test_unknown_choice_lists_options(tmp_path):
    proc = run_cli("aidpose.train", "dropper=dropout", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Available options" in proc.stderr and "cutout" in proc.stderr


def test_design_card_command_trains_with_the_dropper(tmp_path):
    """`backbone=hrnet_w32 dropper=cutout schedule=s2`, shrunk by debug=fast: the dropper really drops."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        "aidpose.train", "debug=fast", "backbone=hrnet_w32", "dropper=cutout", "schedule=s2", "logger=none",
        "callbacks.last_checkpoint=null", f"hydra.run.dir={run_dir}", cwd=tmp_path,  # no 350 MB last.ckpt
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["choices"]["backbone"] == "hrnet_w32" and summary["choices"]["schedule"] == "s2"
    assert 0.0 < summary["aid_dropped_kpt_frac"] < 1.0
    per_joint = json.loads((run_dir / "aid_dropped_per_joint.json").read_text())
    assert per_joint[-1]["epoch"] == 0 and set(per_joint[-1]) >= {"nose", "left_ankle"}
