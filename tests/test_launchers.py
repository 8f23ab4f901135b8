"""Hydra launchers (basic, parallel = joblib, slurm = submitit) compose; a real tiny sweep through the joblib
launcher, and aidpose.report on that sweep read back against the runs' own files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from aidpose.report.__main__ import main as report_main
from tests.helpers import REPO_ROOT, compose_config, run_cli


def test_launcher_configs_compose(tmp_path):
    basic = compose_config([], tmp_path).hydra.launcher
    assert basic._target_.endswith("BasicLauncher")  # Hydra's default: one job after another

    parallel = compose_config(["hydra/launcher=parallel"], tmp_path).hydra.launcher
    assert parallel._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert parallel.n_jobs == 2

    overrides = ["hydra/launcher=slurm", "trainer=gpu", "trainer.devices=4", "trainer.num_nodes=2"]
    slurm = compose_config([*overrides, "hydra.launcher.partition=gpu"], tmp_path).hydra.launcher
    assert slurm._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (slurm.gpus_per_node, slurm.tasks_per_node, slurm.nodes) == (4, 4, 2)  # one SLURM task per device
    assert slurm.partition == "gpu" and slurm.timeout_min > 0 and slurm.mem_gb > 0 and slurm.cpus_per_task > 0
    # Lightning's SLURMEnvironment saves hpc_ckpt and requeues on SIGUSR1, not submitit's USR2
    assert dict(slurm.additional_parameters) == {"signal": "USR1@120", "requeue": True}
    cpu_slurm = compose_config(["hydra/launcher=slurm"], tmp_path).hydra.launcher
    assert cpu_slurm.nodes == 1  # trainer=cpu has no num_nodes


@pytest.mark.slow
def test_joblib_sweep_runs_both_jobs_and_the_report_reads_them_back(tmp_path):
    """Two debug=fast jobs (seeds 0 and 1) side by side through the joblib launcher; aidpose.report on them."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "aidpose.train", "-m", "hydra/launcher=parallel", "debug=fast", "seed=0,1", "logger=csv",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stderr + proc.stdout
    for job, seed in (("0", 0), ("1", 1)):
        summary = json.loads((sweep / job / "metrics.json").read_text())
        assert summary["epochs"] == 1 and summary["choices"]["debug"] == "fast"
        assert f"seed={seed}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()

    assert report_main([str(sweep)]) == 0
    out = sweep / "report"
    report = json.loads((out / "report.json").read_text())
    (cell,) = report["cells"]  # seeds 0 and 1 are one configuration
    assert cell["n"] == 2 and cell["seeds"] == ["0", "1"] and report["unfinished"] == []
    assert cell["config"]["debug"] == "fast" and not {"seed", "logger"} & set(cell["config"])
    summaries = [json.loads((sweep / job / "metrics.json").read_text()) for job in ("0", "1")]
    for metric in report["metrics"]:
        assert cell["metrics"][metric]["values"] == [s["metrics"][metric] for s in summaries]
    losses = []
    for job in ("0", "1"):
        with (sweep / job / "csv" / "version_0" / "metrics.csv").open() as f:
            losses += [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r["train/loss_epoch"]]
    loss = cell["curves"]["train/loss_epoch"]
    assert loss["epoch"] == [1] and loss["min"] == [min(losses)] and loss["max"] == [max(losses)]
    assert cell["curves"]["val/AP"]["mean"] == [pytest.approx(sum(s["metrics"]["AP"] for s in summaries) / 2)]
    table = (out / "report.md").read_text()
    assert "| all runs | 2 |" in table and "## Unfinished or failed runs (0" in table
    assert (out / "curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_joblib_jobs_get_cores_divided_by_n_jobs(tmp_path):
    """torch's thread count inside each job (loky sets OMP/MKL/OpenBLAS limits = cpu_count // n_jobs)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "launcher_threads.py"), "-m", "hydra/launcher=parallel",
         "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(j["seed"] for j in jobs) == [0, 1]
    expected = max(1, os.cpu_count() // 2)
    assert all(j["torch_threads"] == expected and j["OMP_NUM_THREADS"] == str(expected) for j in jobs)
