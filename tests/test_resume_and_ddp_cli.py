"""Long runs through the CLI: last.ckpt, kill-and-resume, SIGTERM, S3, sweeps × DDP, bf16."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import cli_env, run_cli

pytestmark = pytest.mark.slow

# 3 tiny epochs of 2 batches, deterministic, the dropper on (its random stream is part of what must repeat)
THREE_EPOCHS = (
    "debug=fast", "logger=none", "dropper=cutout", "schedule.scale=1", "schedule.epochs=3",
    "trainer.deterministic=true",
)  # fmt: skip


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def read_results(run_dir: Path) -> list[dict]:
    """The final validation's COCO results of a run (a tiny model scores AP 0: compare the predictions)."""
    results = json.loads((run_dir / "results.json").read_text())
    assert results
    return results


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_kill_and_resume_repeats_an_uninterrupted_run_bit_for_bit(tmp_path):
    full, killed, resumed = tmp_path / "full", tmp_path / "killed", tmp_path / "resumed"
    proc = run_cli("aidpose.train", *THREE_EPOCHS, f"hydra.run.dir={full}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = read_summary(full)
    assert (summary["status"], summary["epochs"], summary["max_epochs"], summary["seed"]) == (
        "finished",
        3,
        3,
        42,
    )
    assert "dropper=cutout" in summary["overrides"]
    last = load(full / "last.ckpt")
    # last.ckpt is the end of the last epoch (validation ran only in it: check_val_every_n_epoch=3)
    assert (last["epoch"], last["global_step"]) == (2, summary["global_step"]) == (2, 6)

    proc = run_cli(
        "aidpose.train", *THREE_EPOCHS, "+callbacks.kill._target_=tests.helpers.kill_at_epoch_start",
        "+callbacks.kill.epoch=2", f"hydra.run.dir={killed}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    assert (load(killed / "last.ckpt")["epoch"], load(killed / "last.ckpt")["global_step"]) == (1, 4)

    proc = run_cli(
        "aidpose.train",
        *THREE_EPOCHS,
        f"ckpt_path={killed / 'last.ckpt'}",
        f"hydra.run.dir={resumed}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = load(resumed / "last.ckpt")
    assert again["global_step"] == 6
    assert again["state_dict"].keys() == last["state_dict"].keys()
    for key, value in last["state_dict"].items():
        assert torch.equal(again["state_dict"][key], value), key
    assert read_summary(resumed)["metrics"] == summary["metrics"]
    assert read_results(resumed) == read_results(full)  # the same predictions, to the last digit


def test_sigterm_saves_a_resumable_checkpoint(tmp_path):
    run_dir, resumed = tmp_path / "run", tmp_path / "resumed"
    args = ["debug=fast", "logger=none", "schedule.scale=1", "schedule.epochs=50"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aidpose.train", *args, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (run_dir / "last.ckpt").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert (run_dir / "preempted.ckpt").is_file(), output[-3000:]
    assert "SIGTERM: saved" in output
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and "SIGTERM" in summary["error"]
    epoch = load(run_dir / "preempted.ckpt")["epoch"]
    assert epoch < 49
    done = ["debug=fast", "logger=none", "schedule.scale=1", f"schedule.epochs={epoch + 2}"]
    proc = run_cli(
        "aidpose.train",
        *done,
        f"ckpt_path={run_dir / 'preempted.ckpt'}",
        f"hydra.run.dir={resumed}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_summary(resumed)["status"] == "finished"
    assert load(resumed / "last.ckpt")["epoch"] == epoch + 1


S3 = ("debug=fast", "logger=none", "schedule=s3", "dropper=cutout", "trainer.deterministic=true")


def test_s3_two_stages_resume_inside_stage2_and_stage1_ckpt(tmp_path):
    run_dir = tmp_path / "s3"
    proc = run_cli("aidpose.train", *S3,
                   f"hydra.run.dir={run_dir}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = read_summary(run_dir)
    stage1, stage2 = read_summary(run_dir / "stage1"), read_summary(run_dir / "stage2")
    assert summary["metrics"] == stage2["metrics"] and summary["stage"] == "stage2"
    assert summary["stages"]["stage1"]["run_dir"] == str(run_dir / "stage1")
    assert stage1["aid_dropped_kpt_frac"] == 0.0 < stage2["aid_dropped_kpt_frac"]  # the dropper: stage 2 only
    first, second = load(run_dir / "stage1" / "last.ckpt"), load(run_dir / "stage2" / "last.ckpt")
    assert (first["aidpose_stage"], second["aidpose_stage"]) == ("stage1", "stage2")
    assert first["aidpose_config"]["dropper"] is None and second["aidpose_config"]["dropper"] is not None
    assert second["global_step"] == first["global_step"] == 2  # fresh optimizer state and step count

    resumed = tmp_path / "resumed"
    proc = run_cli("aidpose.train", *S3,
                   f"ckpt_path={run_dir / 'stage2' / 'last.ckpt'}", f"hydra.run.dir={resumed}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (resumed / "stage1").exists()  # stage 1 not rerun
    assert read_summary(resumed)["stages"]["stage1"] == {"ckpt": "resumed inside stage 2"}

    skipped = tmp_path / "skipped"
    stage1_ckpt = run_dir / "stage1" / "last.ckpt"
    proc = run_cli("aidpose.train", *S3,
                   f"schedule.stage1_ckpt={stage1_ckpt}", f"hydra.run.dir={skipped}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (skipped / "stage1").exists()
    assert read_summary(skipped)["stages"]["stage1"] == {"ckpt": str(stage1_ckpt)}
    # same start weights, seed, config and data (deterministic on the CPU): the same stage 2 as the full command
    assert read_summary(skipped)["metrics"] == summary["metrics"]
    assert read_results(skipped / "stage2") == read_results(run_dir / "stage2")


def test_ddp_sweep_keeps_searchpath_and_config_name_and_survives_a_failed_job(tmp_path, ddp_slot):
    """2 jobs × 2 processes: job 0 fails inside fit (negative LR), job 1 trains with a primary config from
    ``--config-dir``/``--config-name`` and a dropper config that exists only in a ``hydra.searchpath`` folder;
    its checkpoint evaluated in one process gives the metrics the DDP run logged."""
    primary, extra = tmp_path / "primary", tmp_path / "extra"
    primary.mkdir()
    (primary / "mytrain.yaml").write_text("defaults:\n  - train\n  - _self_\ntask_name: mytrain\n")
    (extra / "dropper").mkdir(parents=True)
    cutout = (Path(__file__).resolve().parents[1] / "conf" / "dropper" / "cutout.yaml").read_text()
    (extra / "dropper" / "mydrop.yaml").write_text(cutout)
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "aidpose.train", "-m", "--config-dir", str(primary), "--config-name=mytrain",
        f"hydra.searchpath=[file://{extra}]", "debug=fast",
        "trainer=ddp_cpu", "logger=none", "dropper=mydrop", "schedule.lr=-1,0.001", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0  # the sweep reports its failed job
    assert "Invalid learning rate" in proc.stderr
    failed, done = read_summary(sweep / "0"), read_summary(sweep / "1")
    assert failed["status"] == "failed" and "Invalid learning rate" in failed["error"]
    assert done["status"] == "finished" and done["choices"]["dropper"] == "mydrop", proc.stderr[-3000:]
    assert "task_name: mytrain" in (sweep / "1" / ".hydra" / "config.yaml").read_text()
    assert "dropper=mydrop" in (sweep / "1" / "train_ddp_process_1.log").read_text()  # rank 1 trained it too
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]

    evaluated = tmp_path / "eval"
    proc = run_cli("aidpose.evaluate", f"ckpt_path={sweep / '1' / 'last.ckpt'}", f"hydra.run.dir={evaluated}",
                   "trainer.enable_progress_bar=false", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = read_summary(evaluated)
    assert single["world_size"] == 1
    assert single["metrics"] == pytest.approx(done["metrics"], abs=1e-9)
    # the same predictions (a tiny model scores AP 0, so compare the keypoints themselves)
    trained = sorted(
        json.loads((sweep / "1" / "results.json").read_text()), key=lambda r: (r["image_id"], -r["score"])
    )
    again = sorted(
        json.loads((evaluated / "results.json").read_text()), key=lambda r: (r["image_id"], -r["score"])
    )
    assert len(trained) == len(again) == single["num_results"] > 0
    assert [r["image_id"] for r in trained] == [r["image_id"] for r in again]
    np.testing.assert_allclose([r["keypoints"] for r in trained], [r["keypoints"] for r in again], atol=2e-3)


def test_bf16_mixed_trains_on_the_cpu(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("aidpose.train", "debug=fast", "logger=none", "trainer.precision=bf16-mixed",
                   "trainer.accumulate_grad_batches=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load(run_dir / "last.ckpt")
    assert ckpt["global_step"] == 1  # 2 batches accumulated into 1 optimizer step
    assert read_summary(run_dir)["status"] == "finished"
