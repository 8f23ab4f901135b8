"""Distributed evaluation: a 2-process DDP run (gloo) gives the 1-process run's predictions and metrics,
top-down and bottom-up.

The val sets have an odd number of samples (11 person instances, 5 whole images), so the distributed sampler
pads one rank with a repeated sample: gathering every rank's predictions must drop that duplicate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def sorted_results(results: list[dict]) -> tuple[list[tuple[int, float]], np.ndarray]:
    """(image id, score) pairs and keypoints, ordered by image, score and keypoints."""
    ordered = sorted(results, key=lambda r: (r["image_id"], -r["score"], r["keypoints"]))
    return [(r["image_id"], r["score"]) for r in ordered], np.array([r["keypoints"] for r in ordered])


def assert_same_results(results: list[dict], expected: list[dict]) -> None:
    """The same people per image, scores and keypoints equal up to float noise."""
    ids, kpts = sorted_results(results)
    expected_ids, expected_kpts = sorted_results(expected)
    assert [i for i, _ in ids] == [i for i, _ in expected_ids]
    # per-batch float noise (other batch sizes per rank) may flip the last of the 3 rounded decimals
    np.testing.assert_allclose([s for _, s in ids], [s for _, s in expected_ids], atol=1e-4)
    np.testing.assert_allclose(kpts, expected_kpts, atol=2e-3)


def test_two_process_ddp_equals_one_process(
    eval_gt_run, tiny_checkpoint, coco_mini_odd, coco_dataset_args, tmp_path, ddp_slot
):
    run_dir = tmp_path / "run"
    args = [f"ckpt_path={tiny_checkpoint}", *coco_dataset_args(coco_mini_odd), "trainer=ddp_cpu"]
    proc = run_cli(
        "aidpose.evaluate",
        *args,
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((run_dir / "metrics.json").read_text())
    single = json.loads((eval_gt_run / "metrics.json").read_text())
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["data"]["instances"] == single["data"]["instances"] == 11
    assert ddp["metrics"] == pytest.approx(single["metrics"], abs=1e-9)

    ddp_results = json.loads((run_dir / "results.json").read_text())
    single_results = json.loads((eval_gt_run / "results.json").read_text())
    assert len(ddp_results) == len(single_results) == ddp["num_results"]
    assert_same_results(ddp_results, single_results)


def test_bottomup_two_process_ddp_equals_one_process(tmp_path, ddp_slot):
    """A bottom-up checkpoint evaluated on 2 gloo processes finds the 1-process run's people, on 5 val images
    (one rank gets a padding duplicate). Detection threshold -1: the one-epoch model's maps give people to
    compare (with the default 0.1 it finds none)."""
    train_dir = tmp_path / "train"
    proc = run_cli(
        "aidpose.train", "paradigm=bottomup", "debug=fast", "dataset.source.num_val=5",
        "paradigm.codec.detection_threshold=-1", "paradigm.codec.max_people=3", f"hydra.run.dir={train_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {}
    for name, trainer in (("single", "trainer=cpu"), ("ddp", "trainer=ddp_cpu")):
        proc = run_cli(
            "aidpose.evaluate", f"ckpt_path={train_dir / 'last.ckpt'}", trainer, f"hydra.run.dir={tmp_path / name}",
            "trainer.enable_progress_bar=false", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = (
            json.loads((tmp_path / name / "metrics.json").read_text()),
            json.loads((tmp_path / name / "results.json").read_text()),
        )
    (single, single_results), (ddp, ddp_results) = runs["single"], runs["ddp"]
    assert single["world_size"] == 1 and ddp["world_size"] == 2 and ddp["data"]["images"] == 5
    assert len(single_results) == 5 * 3  # max_people on every image, each image once
    assert len(ddp_results) == len(single_results) and ddp["num_results"] == single["num_results"]
    assert ddp["metrics"] == pytest.approx(single["metrics"], abs=1e-9)
    assert_same_results(ddp_results, single_results)
