"""Shared fixtures: paths to the real COCO fixture and a quiet, offline environment."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO_MINI = REPO_ROOT / "tests" / "data" / "coco_mini"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """The four real COCO val2017 photos with their annotations and detector boxes (tests/data/coco_mini)."""
    return COCO_MINI


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of one ``debug=fast`` training run (tiny HRNet on a tiny SynthPose), made once per session."""
    from tests.helpers import run_cli

    root = tmp_path_factory.mktemp("tiny_ckpt")
    run_dir = root / "run"
    proc = run_cli("aidpose.train", "debug=fast", "logger=none", f"hydra.run.dir={run_dir}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "last.ckpt"


@pytest.fixture(scope="session")
def coco_mini_odd(coco_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco_mini with one annotated person removed: 11 instances, an odd number (DDP pads it)."""
    root = tmp_path_factory.mktemp("coco_mini_odd")
    dataset = json.loads((coco_mini / "test_coco.json").read_text())
    with_keypoints = [a for a in dataset["annotations"] if a["num_keypoints"] > 0]
    dataset["annotations"] = [a for a in dataset["annotations"] if a["id"] != with_keypoints[-1]["id"]]
    (root / "test_coco.json").write_text(json.dumps(dataset))
    for image in dataset["images"]:
        (root / image["file_name"]).symlink_to(coco_mini / image["file_name"])
    return root


@pytest.fixture(scope="session")
def coco_dataset_args() -> Callable[[Path], list[str]]:
    """Overrides that make ``dataset=coco`` read ``ROOT/test_coco.json`` and the images in ROOT (train = val)."""

    def args(root: Path) -> list[str]:
        return [
            "dataset=coco",
            f"dataset.source.root={root}",
            "dataset.source.train_ann=test_coco.json",
            "dataset.source.val_ann=test_coco.json",
            "dataset.source.train_images=.",
            "dataset.source.val_images=.",
        ]

    return args


def run_evaluate(root: Path, checkpoint: Path, *args: str) -> Path:
    """Run ``aidpose.evaluate`` on ``checkpoint`` with ``args`` into ``root/run``; return the run folder."""
    from tests.helpers import run_cli

    run_dir = root / "run"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={checkpoint}", *args, f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false", cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def eval_gt_run(tiny_checkpoint, coco_mini_odd, coco_dataset_args, tmp_path_factory) -> Path:
    """Run folder of ``aidpose.evaluate`` (one process) of the tiny checkpoint on coco_mini_odd, GT boxes."""
    return run_evaluate(
        tmp_path_factory.mktemp("eval_gt"), tiny_checkpoint, *coco_dataset_args(coco_mini_odd)
    )


DET_EVAL_OPTIONS = ("test.boxes=detections", "test.nms=soft_oks", "test.det_score_thr=0.5")


@pytest.fixture(scope="session")
def eval_det_run(tiny_checkpoint, coco_mini, coco_dataset_args, tmp_path_factory) -> Path:
    """Run folder of ``aidpose.evaluate`` on coco_mini with its detector boxes (``DET_EVAL_OPTIONS``)."""
    return run_evaluate(
        tmp_path_factory.mktemp("eval_det"),
        tiny_checkpoint,
        *coco_dataset_args(coco_mini),
        *DET_EVAL_OPTIONS,
        f"test.det_file={coco_mini / 'test_coco_det_AP_H_56.json'}",
    )
