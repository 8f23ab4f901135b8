"""aidpose.report on hand-made run folders: configuration key, grouping, statistics, baseline deltas, unfinished runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aidpose.report.__main__ import main
from aidpose.report.runs import Run, config_key, read_epoch_curves, run_problem
from aidpose.report.summary import baseline_config, format_stat, group_runs, mean_std, metric_stats

CHOICES = {"backbone": "hrnet_w18_small", "dropper": "none", "schedule": "s1", "logger": "csv", "debug": None}


def test_config_key_is_choices_plus_value_overrides_without_seed_and_technical_keys():
    overrides = [
        "dropper=cutout", "seed=3", "+dropper.p=0.5", "schedule.scale=0.5", "hydra.sweep.dir=/x",
        "hydra/launcher=parallel", "trainer.enable_progress_bar=false", "logger=none",
    ]  # fmt: skip
    choices = {**CHOICES, "dropper": "cutout", "hydra/launcher": "parallel"}
    assert config_key(overrides, choices) == {
        "backbone": "hrnet_w18_small",
        "dropper": "cutout",
        "dropper.p": "0.5",
        "schedule": "s1",
        "schedule.scale": "0.5",
    }
    assert "schedule.scale" not in config_key(overrides, choices, ignore=["schedule.scale"])
    # naming the default option explicitly is the same configuration as taking it
    assert config_key(["dropper=none"], CHOICES) == config_key([], CHOICES)


def test_runs_differing_only_by_seed_form_one_cell():
    none, cutout = config_key([], CHOICES), config_key([], {**CHOICES, "dropper": "cutout"})
    runs = [Run(Path(f"r{i}"), c, str(i), {"AP": 0.1}) for i, c in enumerate([none, cutout, none, none])]
    cells = group_runs(runs)
    assert [len(c) for c in cells.values()] == [3, 1]
    assert [r.seed for r in cells[tuple(none.items())]] == ["0", "2", "3"]


def test_baseline_config_swaps_the_key_and_drops_its_sub_keys():
    config = {"dropper": "cutout", "dropper.p": "0.5", "schedule": "s2"}
    assert baseline_config(config, ("dropper", "none")) == {"dropper": "none", "schedule": "s2"}
    assert baseline_config({"dropper": "none", "schedule": "s2"}, ("dropper", "none")) is None


def test_baseline_config_keeps_the_sub_keys_a_baseline_row_shares():
    s1 = {"dropper": "cutout", "schedule": "s1", "schedule.scale": "0.2"}
    rows = [
        {"dropper": "cutout", "schedule": "s2"},
        {"dropper": "cutout", "schedule": "s2", "schedule.scale": "0.4"},
        {"dropper": "cutout", "schedule": "s2", "schedule.scale": "0.2"},
        {"dropper": "none", "schedule": "s2", "schedule.scale": "0.2"},
    ]
    assert baseline_config(s1, ("schedule", "s2"), rows) == rows[2]
    assert (
        baseline_config(s1, ("schedule", "s2"), rows[:2]) == rows[0]
    )  # no shared scale: the fewest extra keys
    assert baseline_config(s1, ("schedule", "s2")) == {"dropper": "cutout", "schedule": "s2"}


def test_mean_std_and_formatting():
    mean, std = mean_std([0.2, 0.4])
    assert mean == pytest.approx(0.3) and std == pytest.approx(math.sqrt(0.02))  # sample std (n - 1)
    assert mean_std([0.25]) == (0.25, None)
    assert format_stat(0.2345, 0.0041, 0.011) == "23.4 ± 0.4 (+1.1)"
    assert format_stat(0.2, 0.01, -0.005) == "20.0 ± 1.0 (-0.5)"
    assert format_stat(0.2, 0.01, -0.005, 0.0123) == "20.0 ± 1.0 (-0.5 ± 1.2)"
    assert format_stat(0.5, None) == "50.0"
    assert format_stat(None, None, 0.1) == "n/a"
    # pycocotools' -1 (no ground truth) is never averaged
    assert metric_stats([0.3, -1.0])["mean"] is None


def test_epoch_curves_count_epochs_done_and_place_a_final_validate_on_the_last_epoch():
    rows = [
        {"epoch": "", "step": "0", "lr-Adam": "1e-06"},
        {"epoch": "0", "step": "1", "train/loss_step": "0.5"},
        {"epoch": "0", "step": "1", "train/loss_epoch": "0.4"},
        {"epoch": "1", "step": "3", "train/loss_epoch": "0.3"},
        {"epoch": "1", "step": "3", "val/AP": "0.2"},  # validation inside fit, after epoch index 1
        {"epoch": "2", "step": "5", "train/loss_epoch": "0.25"},
        {"epoch": "3", "step": "5", "val/AP": "0.35"},  # trainer.validate after fit: epoch = epochs done
    ]
    curves = read_epoch_curves(rows)
    assert curves == {"train/loss_epoch": {1: 0.4, 2: 0.3, 3: 0.25}, "val/AP": {2: 0.2, 3: 0.35}}


def test_run_problem_names_why_a_run_is_left_out():
    assert run_problem({"metrics": {"AP": 0.1}, "epochs": 3}, 3) is None
    assert "no metrics.json" in run_problem(None, 3)
    assert "1 of 3 epochs" in run_problem({"metrics": {"AP": 0.1}, "epochs": 1}, 3)
    assert "interrupted" in run_problem({"metrics": {"AP": 0.1}, "epochs": 3, "status": "interrupted"}, 3)
    assert "CUDA out of memory" in run_problem({"metrics": {}, "error": "CUDA out of memory"}, None)


def write_run(
    folder: Path, dropper: str, seed: int, ap: float | None, epochs: int = 2, extra: dict | None = None
) -> Path:
    """A collected run: .hydra/overrides.yaml, metrics.json and a top-level metrics.csv (not with ``ap=None``)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(f"- dropper={dropper}\n- seed={seed}\n")
    if ap is not None:
        metrics = {"AP": ap, "AP50": 2 * ap, "APL": -1.0}
        summary = {
            "metrics": metrics,
            "choices": {**CHOICES, "dropper": dropper},
            "epochs": epochs,
            **(extra or {}),
        }
        (folder / "metrics.json").write_text(json.dumps(summary))
        rows = [f"{e},{e},{1 - ap - e / 10},{ap}" for e in range(epochs)]
        (folder / "metrics.csv").write_text("\n".join(["epoch,step,train/loss_epoch,val/AP", *rows]) + "\n")
    return folder


def test_report_of_collected_runs(tmp_path, capsys):
    root = tmp_path / "runs"
    for dropper, seed, ap in [("none", 0, 0.30), ("none", 1, 0.32), ("cutout", 0, 0.33), ("cutout", 1, 0.37)]:
        write_run(root / f"{dropper}_seed{seed}", dropper, seed, ap)
    write_run(root / "cutout_seed2", "cutout", 2, None)  # crashed: no metrics.json
    write_run(root / "cutout_seed3", "cutout", 3, 0.9, epochs=1, extra={"max_epochs": 2})  # stopped early
    occlusion = {"dropper": "cutout", "rows": [
        {"level": "clean", "occluded_area": 0.0, "metrics": {"AP": 0.33, "AP_vis": 0.4, "AP_invis": 0.1}},
        {"level": 0.2, "occluded_area": 0.12, "metrics": {"AP": 0.2, "AP_vis": 0.3, "AP_invis": 0.05}},
    ]}  # fmt: skip
    (root / "cutout_seed0" / "occlusion").mkdir()
    (root / "cutout_seed0" / "occlusion" / "occlusion.json").write_text(json.dumps(occlusion))
    for seed, shares in [(0, [(0.1, 0.3), (0.2, 0.4)]), (1, [(0.3, 0.0), (0.3, 0.1)])]:  # 2 epochs, 2 joints
        per_epoch = [{"epoch": e, "nose": a, "left_eye": b} for e, (a, b) in enumerate(shares)]
        (root / f"cutout_seed{seed}" / "aid_dropped_per_joint.json").write_text(json.dumps(per_epoch))
    no_drop = [{"epoch": 0, "nose": 0.0, "left_eye": 0.0}]
    for seed, train_ap in [(0, 0.40), (1, 0.44)]:  # the baseline's final checkpoints on their training images
        train_eval = {"metrics": {"AP": train_ap}}
        (root / f"none_seed{seed}" / "train_set_eval.json").write_text(json.dumps(train_eval))
    (root / "none_seed0" / "aid_dropped_per_joint.json").write_text(json.dumps(no_drop))

    assert main([str(root), "--metrics", "AP", "AP50", "APL"]) == 0
    out = root / "report"
    report = json.loads((out / "report.json").read_text())
    none, cutout = report["cells"]  # the baseline row first
    assert (none["label"], none["n"], none["seeds"]) == ("dropper=none", 2, ["0", "1"])
    assert (cutout["label"], cutout["n"], cutout["seeds"]) == ("dropper=cutout", 2, ["0", "1"])
    assert cutout["metrics"]["AP"]["mean"] == pytest.approx(0.35)
    assert cutout["metrics"]["AP"]["delta"] == pytest.approx(0.04)
    # Welch standard error of the difference: sqrt(0.0008 / 2 + 0.0002 / 2) (sample variances of 0.33, 0.37 and 0.30, 0.32)
    assert cutout["metrics"]["AP"]["delta_se"] == pytest.approx(math.sqrt(0.0005))
    assert none["metrics"]["AP"]["delta"] is None and none["metrics"]["AP"]["delta_se"] is None
    assert cutout["curves"]["val/AP"]["epoch"] == [1, 2]
    assert cutout["occlusion"]["cutout"][1]["AP"]["mean"] == pytest.approx(0.2)
    # nose: epochs (0.1, 0.2) → 0.15 and (0.3, 0.3) → 0.3, over seeds 0.225; left_eye: (0.35 + 0.05) / 2
    assert cutout["dropped"] == pytest.approx({"nose": 0.225, "left_eye": 0.2})
    assert none["dropped"] == {}  # nothing hidden: no column
    # gaps 0.40 - 0.30 and 0.44 - 0.32; last epoch's training loss 1 - AP - 0.1 (write_run)
    assert none["fit"]["gap"]["mean"] == pytest.approx(0.11)
    assert none["fit"]["train_loss"]["values"] == pytest.approx([0.6, 0.58])
    assert (
        "val_loss" not in none["fit"] and "gap" not in cutout["fit"]
    )  # no val/loss column, no train_set_eval
    assert sorted(Path(u["run"]).name for u in report["unfinished"]) == ["cutout_seed2", "cutout_seed3"]
    assert "seed" in report["ignored_keys"]
    assert cutout["config"] == {
        "backbone": "hrnet_w18_small",
        "dropper": "cutout",
        "schedule": "s1",
    }  # the key

    table = (out / "report.md").read_text()
    assert "| dropper=cutout | 2 | 35.0 ± 2.8 (+4.0 ± 2.2) | 70.0 ± 5.7 (+8.0 ± 4.5) | n/a |" in table
    assert "| dropper=none | 2 | 31.0 ± 1.4 | 62.0 ± 2.8 | n/a |" in table
    assert "1 of 2 epochs trained" in table and "no metrics.json" in table
    assert "| dropper=none | 2 | 42.0 ± 2.8 | 31.0 ± 1.4 | 11.0 ± 1.4 | 590.000 ± 14.142 | n/a |" in table
    assert "| joint | dropper=cutout |\n|---|---|\n| nose | 22.5 |\n| left_eye | 20.0 |" in table
    assert table in capsys.readouterr().out
    assert (out / "curves.png").stat().st_size > 10_000
    assert (out / "occlusion_cutout.png").stat().st_size > 10_000


def test_cli_errors_are_clear(tmp_path):
    with pytest.raises(SystemExit, match="no run folder under"):
        main([str(tmp_path)])
    with pytest.raises(SystemExit):
        main([str(tmp_path), str(tmp_path)])  # two PATHs need --out
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        main([str(tmp_path / "missing")])
    write_run(tmp_path / "run", "none", 0, 0.3)
    with pytest.raises(SystemExit, match="--metrics APx: no run has it; the runs have AP AP50 APL"):
        main([str(tmp_path / "run"), "--metrics", "AP", "APx"])
