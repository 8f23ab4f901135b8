"""The SynthPose study driver: the protocol's convergence rule, cell order, resuming and collecting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def study(repo_root):
    return load_script(repo_root, "synthpose_study")


def test_convergence_gain_by_hand(study):
    # first milestone m = 10, k = round(10 / 5) = 2: mean AP after epochs 8, 9, 10 minus after 6, 7, 8
    ap = {e: 0.01 * e for e in range(1, 13)}
    assert study.convergence_gain(ap, 10) == pytest.approx(0.09 - 0.07)
    flat = dict.fromkeys(range(1, 13), 0.3)
    assert study.convergence_gain(flat, 10) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="every 1 epochs from 6 to 10"):
        study.convergence_gain({e: 0.1 for e in range(1, 10)}, 10)


def test_convergence_gain_on_a_grid_of_evaluations(study):
    # study 2: m = 170, evaluations every 10 epochs, k = 10 * round(170 / 50) = 30: mean AP after 150, 160, 170
    # minus the mean after 120, 130, 140
    ap = {e: 0.001 * e for e in range(10, 211, 10)}
    assert study.convergence_gain(ap, 170, 10) == pytest.approx(0.001 * (160 - 130))
    ap[120], ap[170] = 0.0, 1.0
    assert study.convergence_gain(ap, 170, 10) == pytest.approx(
        (0.150 + 0.160 + 1.0) / 3 - (0.0 + 0.130 + 0.140) / 3
    )
    with pytest.raises(ValueError, match="every 10 epochs from 120 to 170"):
        study.convergence_gain({e: 0.1 for e in range(130, 171, 10)}, 170, 10)


def test_s2_time_estimate_from_two_timing_runs(study):
    # t10: start-up + one block (10 epochs + one validation); t20: start-up + two blocks; S2 = 42 blocks
    startup, block = 7.0, 80.0
    assert study.s2_estimate(startup + block, startup + 2 * block) == pytest.approx(startup + 42 * block)


def test_cells_run_in_protocol_order(study):
    runs = study.planned_runs(["E1", "E2", "E3", "E4", "S2_has"], [0, 1])
    assert runs[:4] == [("E3", 0), ("E4", 0), ("E3", 1), ("E4", 1)]
    assert runs[4:8] == [("E1", 0), ("E2", 0), ("E1", 1), ("E2", 1)]
    assert runs[-2:] == [("S2_has", 0), ("S2_has", 1)]


def test_interrupted_run_resumes_from_the_later_stage(study, tmp_path):
    assert study.resume_checkpoint(tmp_path) is None
    (tmp_path / "stage1").mkdir()
    (tmp_path / "stage1" / "last.ckpt").write_bytes(b"")
    assert study.resume_checkpoint(tmp_path) == tmp_path / "stage1" / "last.ckpt"
    (tmp_path / "stage2").mkdir()
    (tmp_path / "stage2" / "last.ckpt").write_bytes(b"")
    assert study.resume_checkpoint(tmp_path) == tmp_path / "stage2" / "last.ckpt"
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "failed"}))
    assert not study.finished(tmp_path)  # a failed run writes metrics.json too


def test_collect_keeps_what_the_report_reads(study, tmp_path):
    from aidpose.report.runs import read_run

    run, dest = tmp_path / "run", tmp_path / "dest"
    (run / ".hydra").mkdir(parents=True)
    (run / "stage2" / "csv" / "version_0").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- schedule=s3\n- seed=1\n")
    (run / ".hydra" / "config.yaml").write_text("seed: 1\n")
    summary = {"metrics": {"AP": 0.5}, "choices": {"schedule": "s3"}, "epochs": 2, "status": "finished"}
    (run / "metrics.json").write_text(json.dumps(summary))
    (run / "stage2" / "csv" / "version_0" / "metrics.csv").write_text(
        "epoch,step,val/AP,train/loss_epoch\n0,9,0.25,0.1\n1,19,0.5,0.05\n"
    )
    assert read_run(run).curves["val/AP"] == {1: 0.25, 2: 0.5}  # an S3 run folder: stage 2's curves
    study.collect(run, dest, "abc123")
    collected = read_run(dest)
    assert collected.metrics == {"AP": 0.5} and collected.seed == "1" and collected.problem is None
    assert collected.curves["val/AP"] == {1: 0.25, 2: 0.5}
    assert json.loads((dest / "provenance.json").read_text()) == {"commit": "abc123", "run_dir": str(run)}


def test_settings_are_searched_largest_training_set_first(study):
    first, second = study.STUDIES["synthpose_aid"], study.STUDIES["synthpose_aid_converged"]
    sizes = [n for n, _ in first.candidates]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == study.FULL_TRAIN_SET
    for n in set(sizes):  # within a training-set size, the smallest scale first
        scales = [s for m, s in first.candidates if m == n]
        assert scales == sorted(scales)
    # study 2: the paper's schedules unscaled, N in 400, 200, 100, validation every 10 epochs, S2 within 1 h
    assert second.candidates == ((400, 1.0), (200, 1.0), (100, 1.0)) and not second.fallback
    assert "trainer.check_val_every_n_epoch=10" in second.common and second.s2_limit_s == 3600
    assert "trainer.check_val_every_n_epoch=1" in first.common and first.s2_limit_s is None
    # the full training set keeps the names and command lines of the runs made before sizes were searched
    assert study.convergence_name(1600, 0.2) == "S1x0.2_seed0"
    assert study.setting_overrides(1600, 0.2) == ["schedule.scale=0.2"]
    assert study.convergence_name(800, 0.4) == "S1x0.4_n800_seed0"
    assert study.setting_overrides(800, 0.4) == ["dataset.source.num_train=800", "schedule.scale=0.4"]
    e5 = study.train_overrides(study.STUDIES["synthpose_aid"], "E5", 2, 800, 0.4, Path("/nonexistent"))
    assert "dataset.source.num_train=800" in e5 and "schedule=s3" in e5 and "seed=2" in e5


def test_setting_is_the_first_passing_candidate_else_the_closest(study):
    def m(n, scale, gain):
        return {"num_train": n, "scale": scale, "gain": gain, "passes": gain < study.GAIN_LIMIT}

    runs = [m(1600, 0.2, 0.037), m(800, 0.4, 0.004), m(400, 0.2, 0.001)]
    assert study.decide_setting(runs) == {"num_train": 800, "scale": 0.4, "converged": True}
    runs = [m(1600, 0.2, 0.037), m(800, 0.2, 0.047), m(400, 0.2, 0.021), m(400, 0.4, 0.037)]
    assert study.decide_setting(runs) == {"num_train": 400, "scale": 0.2, "converged": False}
    assert study.decide_setting(runs, fallback=False) is None  # study 2 stops without a converged setting
    assert study.decide_setting([], fallback=True) is None  # no candidate fitted the time limit


def test_claims_share_a_study_between_processes(study, tmp_path):
    run_dir = tmp_path / "runs" / "E3_seed0"
    assert study.claim(run_dir) and study.claim(run_dir)  # this process holds it
    (tmp_path / "runs" / "E4_seed0.claim").mkdir()  # another process's claim
    assert not study.claim(tmp_path / "runs" / "E4_seed0")


def test_dry_run_decides_from_committed_runs_and_writes_nothing(
    study, repo_root, tmp_path, monkeypatch, capsys
):
    import shutil

    shutil.copytree(
        repo_root / "docs" / "results" / "synthpose_aid" / "convergence", tmp_path / "convergence"
    )
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    argv = ["synthpose_study.py", "--dry-run", "--cells", "E1,E3", "--seeds", "0"]
    argv += ["--results", str(tmp_path / "runs"), "--runs", str(tmp_path / "logs")]
    monkeypatch.setattr("sys.argv", argv)
    assert study.main() == 0
    out = capsys.readouterr().out
    assert "E1_seed0: the convergence run S1x0.2_n400_seed0" in out
    assert "dropper=none seed=0 dataset.source.num_train=400 schedule.scale=0.2" in out  # E3 seed 0
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_study_2_dry_run_stops_where_its_protocol_does(study, repo_root, tmp_path, monkeypatch, capsys):
    import shutil

    committed = repo_root / "docs" / "results" / "synthpose_aid_converged"
    for folder in ("timing", "convergence"):
        shutil.copytree(committed / folder, tmp_path / folder)
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    argv = ["synthpose_study.py", "--study", "synthpose_aid_converged", "--dry-run"]
    argv += ["--results", str(tmp_path / "runs"), "--runs", str(tmp_path / "logs")]
    monkeypatch.setattr("sys.argv", argv)
    assert study.main() == 0
    out = capsys.readouterr().out
    for n, minutes in ((400, 3164), (200, 2046), (100, 946)):  # rule (a) from the committed timing runs
        assert f"{n} images: S2 estimated at {minutes} s (limit 3600 s)" in out
    assert "gain +1.59 AP" in out and "gain +1.25 AP" in out and "gain +3.04 AP" in out
    assert "no candidate passed: the study stops" in out and "aidpose.train" not in out  # no cell
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
