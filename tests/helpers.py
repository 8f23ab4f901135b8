"""Test helpers: compose the project's Hydra configs, run its CLIs in a subprocess, load its scripts, and write
a hand-built CrowdPose folder."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
from omegaconf import DictConfig

from aidpose.runtime import compose_outside_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"


def compose_config(overrides: list[str], tmp_path: Path, config_name: str = "train") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as the CLI would, with data and outputs under ``tmp_path``."""
    return compose_outside_cli(config_name, overrides, REPO_ROOT, tmp_path / "data", tmp_path / "run")


def cli_env(cwd: Path) -> dict[str, str]:
    """The environment of a CLI run in ``cwd``: offline, quiet, data under ``cwd/data``, ``tests`` importable."""
    return {
        **os.environ,
        # the checkout first; an existing PYTHONPATH stays (packages installed with --target, scripts/gpu_check.sh)
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "src"), str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        # one OpenMP thread per process: spinning threads of concurrent processes (DDP ranks, loader
        # workers) on 2 cores slow each other down 10× or more
        "OMP_NUM_THREADS": "1",
        "AIDPOSE_DATA_DIR": str(cwd / "data"),
    }


def run_cli(
    module: str, *args: str, cwd: Path, timeout: float = 600, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args...`` with an offline, quiet environment; return the finished process.

    ``env`` changes that environment: a value sets a variable, None removes it.
    """
    environ = cli_env(cwd)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kill_at_epoch_start(epoch: int) -> object:
    """A Lightning callback for CLI tests (``+callbacks.kill._target_=tests.helpers.kill_at_epoch_start``): it
    SIGKILLs its own process when epoch ``epoch`` starts, right after epoch ``epoch - 1``'s checkpoints."""
    import signal

    import pytorch_lightning as pl

    class KillAtEpochStart(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.current_epoch == epoch:
                os.kill(os.getpid(), signal.SIGKILL)

    return KillAtEpochStart()


def save_start_weights() -> object:
    """A Lightning callback for CLI tests (``+callbacks.start._target_=tests.helpers.save_start_weights``): it saves
    the model's weights as training starts to ``<run folder>/start_weights.pt`` (S3: each stage's folder)."""
    import pytorch_lightning as pl
    import torch

    class SaveStartWeights(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.is_global_zero:
                Path(trainer.default_root_dir).mkdir(parents=True, exist_ok=True)
                torch.save(pl_module.state_dict(), Path(trainer.default_root_dir) / "start_weights.pt")

    return SaveStartWeights()


def load_script(repo_root: Path, name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the scripts are no package)."""
    spec = importlib.util.spec_from_file_location(name, repo_root / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in a script look their module up there
    spec.loader.exec_module(module)
    return module


def write_crowdpose(root: Path) -> None:
    """CrowdPose's folder layout and format: 14 keypoints, image-level ``crowdIndex``, no segmentation."""
    (root / "images").mkdir(parents=True)
    (root / "json").mkdir()
    for name in ("100000.jpg", "100001.jpg"):
        cv2.imwrite(str(root / "images" / name), np.full((120, 160, 3), 90, np.uint8))
    rng = np.random.default_rng(4)

    def ann(ann_id: int, image_id: int, labelled: int) -> dict:
        kps = np.zeros((14, 3))
        kps[:labelled, :2] = rng.uniform(20, 100, (labelled, 2))
        kps[:labelled, 2] = rng.integers(1, 3, labelled)
        return {
            "num_keypoints": labelled,
            "iscrowd": 0,
            "keypoints": kps.ravel().round(1).tolist(),
            "image_id": image_id,
            "bbox": [15.0, 15.0, 90.0, 90.0],
            "category_id": 1,
            "id": ann_id,
        }

    images = [
        {"file_name": "100000.jpg", "id": 100000, "height": 120, "width": 160, "crowdIndex": 0.12},
        {"file_name": "100001.jpg", "id": 100001, "height": 120, "width": 160, "crowdIndex": 0.85},
    ]
    for split, anns in (
        ("trainval", [ann(1, 100000, 14), ann(2, 100000, 9), ann(3, 100001, 0)]),
        ("test", [ann(4, 100001, 12)]),
    ):
        data = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}],
        }
        (root / "json" / f"crowdpose_{split}.json").write_text(json.dumps(data))
