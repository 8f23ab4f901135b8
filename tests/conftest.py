"""Shared fixtures: paths to the real COCO fixture and a quiet, offline environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO_MINI = REPO_ROOT.parent / "shared" / "data" / "coco_mini"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """The four real COCO val2017 photos with their annotations and detector boxes (../shared)."""
    if not (COCO_MINI / "test_coco.json").is_file():
        pytest.skip(f"real COCO fixture not found at {COCO_MINI} (it lives in ../shared beside the checkout)")
    return COCO_MINI
