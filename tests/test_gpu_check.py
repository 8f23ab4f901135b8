"""scripts/gpu_check.sh --dry-run on a CPU: the CUDA tests collect, and every step of the GPU check composes
(configs, datasets, models, a training step per paradigm, inference, the short run's config) into one JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, cli_env


@pytest.mark.slow
def test_the_gpu_check_dry_run_prints_one_json_with_every_field(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh"), "--dry-run"],
        cwd=tmp_path, env={**cli_env(tmp_path), "PYTHON": sys.executable}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "complete" and result["dry_run"] is True
    assert result["cuda_tests"].startswith("collected only: 4 tests collected")
    assert result["synthpose"]["images"] == {"train": 8, "val": 4}
    models = {"hrnet_w32_256x192_topdown": [192, 256], "higherhrnet_w32_512_bottomup": [512, 512]}
    for name, input_size in models.items():
        figures = result["training"][name]
        assert figures["backbone"] == "hrnet_w32" and figures["input_size"] == input_size
        step = figures["32-true_workers_0"]
        assert step["steps"] == 1 and step["loss_finite"] is True and "status" not in step
        assert 0 <= step["data_wait_share"] <= 1 and step["images_per_s"] > 0
        assert {"peak_gpu_memory_gib", "seconds"} <= step.keys()
        inference = result["inference"][name]
        assert inference["flip_test"] is True and inference["images_per_s"] > 0
    assert "status" not in result["short_run"] and result["short_run"]["overrides"]
