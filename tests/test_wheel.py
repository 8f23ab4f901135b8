"""The built wheel carries the configs: ``python -m aidpose.train`` runs from it, outside any checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def test_a_wheel_installed_outside_the_checkout_trains(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a clean copy: the build writes build/ and *.egg-info beside the sources
    _mkdir(source)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "conf", source / "conf")
    shutil.copytree(
        REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run = {"capture_output": True, "text": True, "check": False, "timeout": 300}
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], **run
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("aidpose-*.whl")
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], **run)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert (site / "aidpose" / "conf" / "train.yaml").is_file()

    work = _mkdir(tmp_path / "elsewhere")
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # the installed copy only, not the checkout's src/
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "AIDPOSE_DATA_DIR": str(work / "data"),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import aidpose.runtime as r; print(r.__file__, r.CONFIG_PATH)"],
        cwd=work,
        env=env,
        **run,
    )
    module_file, config_path = where.stdout.split()
    assert module_file.startswith(str(site)) and config_path == "pkg://aidpose.conf"
    proc = subprocess.run(
        [sys.executable, "-m", "aidpose.train", "debug=fast", "logger=none"], cwd=work, env=env, **run
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = (work / "logs" / "train" / "runs").glob("*/metrics.json")
    assert set(json.loads(metrics.read_text())["metrics"]) >= {"AP", "AP_vis"}
    assert sorted(p.name for p in work.iterdir()) == ["data", "logs"]  # nothing else in the working directory


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
