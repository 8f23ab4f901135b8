"""Dropper calibration: the pure search (hand-computed), the dropper-config helpers and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from aidpose.aid import Strength
from aidpose.calibrate.measure import check_options, sample_seed
from aidpose.calibrate.search import (
    Trial,
    changed_arguments,
    complete_dropper_config,
    dropper_at,
    dropper_yaml,
    match_loss,
    monotone_violations,
    override_value,
    relative_gap,
    strength_param,
)
from tests.helpers import CONF_DIR, compose_config, run_cli

HAS = {
    "_target_": "aidpose.aid.HideAndSeek",
    "p": 1.0,
    "cell_sizes": [0.0, 0.08333333, 0.16666667, 0.22916667],
    "hide_prob": 0.5,
    "fill": 0,
}


def values(result):
    return [t.value for t in result.trials]


# ---------------------------------------------------------------------------------------------- search


def test_bisection_on_increasing_line():
    # f = 2x + 1, target 1.6 (root 0.3): ends 1, 3; midpoints 0.5 → 2.0, 0.25 → 1.5, 0.375 → 1.75,
    # 0.3125 → 1.625 (gap 1.5625% ≤ 2%)
    result = match_loss(lambda x: 2 * x + 1, 1.6, 0.0, 1.0, tolerance=0.02, max_iters=10)
    assert values(result) == [0.0, 1.0, 0.5, 0.25, 0.375, 0.3125]
    assert result.converged and result.increasing is True
    assert result.best == Trial(0.3125, 1.625)
    assert result.monotone_violations == 0


def test_bisection_on_decreasing_line():
    # f = 1 − x, target 0.3 (root 0.7): ends 1, 0; midpoints 0.5 → 0.5, 0.75 → 0.25, 0.625 → 0.375,
    # 0.6875 → 0.3125 (gap 4.17% ≤ 5%)
    result = match_loss(lambda x: 1 - x, 0.3, 0.0, 1.0, tolerance=0.05, max_iters=10)
    assert values(result) == [0.0, 1.0, 0.5, 0.75, 0.625, 0.6875]
    assert result.converged and result.increasing is False
    assert result.best.value == 0.6875
    assert result.best.loss == pytest.approx(0.3125)


def test_max_iters_reports_the_closest_trial():
    # losses 1, 3, 2.0, 1.5, 1.75 → closest to 1.6 is 1.5 at x = 0.25
    result = match_loss(lambda x: 2 * x + 1, 1.6, 0.0, 1.0, tolerance=1e-6, max_iters=3)
    assert values(result) == [0.0, 1.0, 0.5, 0.25, 0.375]
    assert not result.converged and "max_iters=3" in result.reason
    assert result.best == Trial(0.25, 1.5)


def test_target_outside_the_range_returns_the_closer_end():
    result = match_loss(lambda x: 2 * x + 1, 5.0, 0.0, 1.0, tolerance=0.02, max_iters=10)
    assert values(result) == [0.0, 1.0]
    assert not result.converged and "outside" in result.reason and "widen the range" in result.reason
    assert result.best == Trial(1.0, 3.0)


def test_an_end_within_tolerance_stops_the_search():
    result = match_loss(lambda x: 2 * x + 1, 1.01, 0.0, 1.0, tolerance=0.02, max_iters=10)
    assert values(result) == [0.0, 1.0] and result.converged and result.best == Trial(0.0, 1.0)


def test_search_rejects_bad_arguments():
    with pytest.raises(ValueError, match="low < high"):
        match_loss(lambda x: x, 0.5, 1.0, 0.0, 0.02, 5)
    with pytest.raises(ValueError, match="tolerance"):
        match_loss(lambda x: x, 0.5, 0.0, 1.0, 0.0, 5)
    with pytest.raises(ValueError, match="not finite"):
        match_loss(lambda x: float("nan"), 0.5, 0.0, 1.0, 0.02, 5)
    with pytest.raises(ValueError, match="target loss is 0"):
        relative_gap(1.0, 0.0)


def test_monotone_violations_count_neighbours_against_the_direction():
    trials = [Trial(0.0, 1.0), Trial(1.0, 2.0), Trial(0.5, 3.0)]  # sorted: 1.0, 3.0, 2.0
    assert monotone_violations(trials, increasing=True) == 1
    assert monotone_violations(trials, increasing=False) == 1
    assert monotone_violations([Trial(0.0, 1.0), Trial(1.0, 0.5)], increasing=False) == 0
    assert monotone_violations(trials, increasing=None) == 0


# ---------------------------------------------------------------------------------------------- configs


def test_strength_param_and_dropper_at_each_mode():
    has = strength_param(HAS)  # declared by the class: HideAndSeek.strength
    assert has == Strength("hide_prob", "value", 0.0, 1.0)
    assert dropper_at(HAS, has, 0.3)["hide_prob"] == 0.3
    cutout = {"_target_": "aidpose.aid.Cutout", "size_range": [0.2, 0.4]}
    scale = strength_param(cutout)
    assert scale == Strength("size_range", "scale", 0.25, 2.5)
    assert dropper_at(cutout, scale, 1.5)["size_range"] == [0.3, 0.6]  # 0.2·1.5 rounded to 6 digits
    erasing = {"_target_": "aidpose.aid.RandomErasing", "area_range": [0.02, 0.4]}
    upper = strength_param(erasing)
    assert dropper_at(erasing, upper, 0.7)["area_range"] == [0.02, 0.7]
    assert cutout == {"_target_": "aidpose.aid.Cutout", "size_range": [0.2, 0.4]}  # not modified
    assert strength_param(HAS, [0.1, 0.6]) == Strength("hide_prob", "value", 0.1, 0.6)  # calibrate.range


def test_strength_param_errors_name_the_field():
    with pytest.raises(
        ValueError, match=r"dropper class aidpose.aid.InformationDropper declares no strength"
    ):
        strength_param({"_target_": "aidpose.aid.InformationDropper"})
    with pytest.raises(
        ValueError, match=r"strength argument 'hide_prob' of aidpose.aid.HideAndSeek is not in"
    ):
        strength_param({k: v for k, v in HAS.items() if k != "hide_prob"})
    with pytest.raises(ValueError, match="below area_range's lower end"):
        strength_param({"_target_": "aidpose.aid.RandomErasing", "area_range": [0.02, 0.4]}, [0.01, 0.5])
    with pytest.raises(ValueError, match=r"calibrate.range=\[0.5, 0.5\] must have low < high"):
        strength_param(HAS, [0.5, 0.5])
    with pytest.raises(ValueError, match="mode='double' is not one of"):
        Strength("hide_prob", "double", 0.0, 1.0)


def test_complete_config_yaml_and_overrides():
    full = complete_dropper_config({"_target_": "aidpose.aid.HideAndSeek", "hide_prob": 0.3})
    assert full == {**HAS, "hide_prob": 0.3}  # the constructor's defaults fill the rest, in its order
    assert list(full) == ["_target_", "cell_sizes", "hide_prob", "fill", "p"]
    with pytest.raises(ValueError, match=r"\['radius'\]"):
        complete_dropper_config({**HAS, "radius": 2})
    text = dropper_yaml(full, ["calibrated against cutout", "", "second line"])
    assert text.startswith(
        "# calibrated against cutout\n#\n# second line\n_target_: aidpose.aid.HideAndSeek\n"
    )
    assert "cell_sizes: [0.0, 0.08333333, 0.16666667, 0.22916667]" in text
    assert yaml.safe_load(text) == full
    assert changed_arguments(full, HAS) == {"hide_prob": 0.3}
    assert changed_arguments({**full, "fill": "mean"}, HAS) == {"hide_prob": 0.3, "fill": "mean"}
    assert [override_value(v) for v in ([0.2, 0.4], None, True, "mean", 0.25)] == [
        "[0.2,0.4]", "null", "true", "mean", "0.25"
    ]  # fmt: skip


def test_sample_seeds_are_fixed_and_distinct():
    assert sample_seed(42, 3) == sample_seed(42, 3)
    assert len({sample_seed(42, i) for i in range(100)} | {sample_seed(43, 0)}) == 101


def test_a_model_at_initialisation_needs_training_steps(tmp_path):
    opts = compose_config([], tmp_path, config_name="calibrate").calibrate
    assert opts.checkpoint is None and opts.steps == 0
    with pytest.raises(
        ValueError, match=r"calibrate.steps=0 without calibrate.checkpoint .* heatmaps are ~0"
    ):
        check_options(opts)
    opts.steps = 1  # step 1's loss is computed before any update: still the initialisation
    with pytest.raises(ValueError, match=r"calibrate.steps=1 without calibrate.checkpoint"):
        check_options(opts)
    opts.checkpoint, opts.steps = "last.ckpt", 0
    check_options(opts)  # trained weights: the eval-mode loss is meaningful
    opts.batches = 0
    with pytest.raises(ValueError, match=r"calibrate.batches=0 must be an integer ≥ 1"):
        check_options(opts)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A data folder shared by the in-process tests (the tiny SynthPose of debug=fast is generated once)."""
    return tmp_path_factory.mktemp("data")


def tiny_calibrate_config(tmp_path: Path, data_dir: Path, overrides: list[str]):
    cfg = compose_config(
        ["debug=fast", "paradigm.input_size=[64,96]", "calibrate.steps=2", "calibrate.batches=1",
         "calibrate.batch_size=2", *overrides],
        tmp_path, config_name="calibrate",
    )  # fmt: skip
    cfg.paths.data_dir = str(data_dir)
    return cfg


def test_fixed_samples_make_the_dropper_the_only_change(tmp_path, tiny_data):
    """From a fresh initialisation: repeated measurements are identical, and HaS hiding nothing equals no dropper."""
    from aidpose.calibrate.measure import build_probe

    probe, _, start = build_probe(tiny_calibrate_config(tmp_path, tiny_data, []))
    assert start == "a fresh initialisation (seed 42)"
    has = dict(HAS)
    clean = probe(None)
    assert probe(None) == clean
    assert probe({**has, "hide_prob": 0.0}) == clean
    hidden = probe({**has, "hide_prob": 1.0})
    assert hidden.loss != clean.loss
    assert hidden.dropped_kpt_frac > 0 and clean.dropped_kpt_frac == 0


def test_a_target_the_loss_cannot_see_stops_with_an_error(tmp_path, tiny_data):
    """Two steps from the initialisation: Cutout moves the loss by far less than 2%, so there is nothing to match."""
    from aidpose.calibrate.__main__ import calibrate

    cfg = tiny_calibrate_config(tmp_path, tiny_data, ["dropper=has"])
    GlobalHydra.instance().clear()
    message = r"calibrate.target=cutout changes the loss by less than calibrate.tolerance=0.02 .* cannot tell"
    # calibrate composes the target's config: Hydra must be initialised as under the CLI
    with (
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
        pytest.raises(ValueError, match=message),
    ):
        calibrate(cfg)
    assert not (tmp_path / "run" / "calibration.json").exists()


@pytest.mark.slow
def test_cli_calibrates_has_against_cutout_on_a_trained_tiny_model(tmp_path, monkeypatch):
    """Train a tiny model (seconds), then match HaS's loss on its dropped crops to Cutout's within 1%."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two threads on a busy 2-core machine run many times slower
    tiny = ["debug=fast", "paradigm.input_size=[64,96]"]
    train = run_cli(
        "aidpose.train", *tiny, "trainer.limit_train_batches=null", "schedule.scale=0.05", "schedule.milestones=[170,200]",
        "trainer.check_val_every_n_epoch=100", "logger=none", f"hydra.run.dir={tmp_path / 'train'}", cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = tmp_path / "calibrate"
    # one cell size: hide_prob=1 hides every whole crop, so the strong end of the range is clearly above
    # Cutout's loss even for this barely trained model (with g=0 among the sizes it may only just reach it)
    proc = run_cli(
        "aidpose.calibrate", *tiny, "dropper=has", "dropper.cell_sizes=[0.125]", "calibrate.target=cutout",
        f"calibrate.checkpoint={tmp_path / 'train' / 'last.ckpt'}", "calibrate.steps=0", "calibrate.batches=4",
        "calibrate.batch_size=4", "calibrate.tolerance=0.005", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "calibration.json").read_text())
    rows = summary["rows"]
    assert [r["label"] for r in rows[:4]] == ["none", "cutout", "has", "has"]
    assert rows[1]["loss"] > rows[0]["loss"]  # the trained model sees what Cutout hides
    assert (
        rows[2]["value"] == 0.0 and rows[2]["loss"] == rows[0]["loss"]
    )  # same crops: hiding nothing = no dropper
    assert summary["converged"] and summary["increasing"] is True
    assert len(rows) > 4  # bisected beyond the two ends of [0, 1]
    assert abs(summary["best"]["loss"] - summary["target_loss"]) <= 0.01 * summary["target_loss"]
    assert (
        "hide_prob" in proc.stdout and "converged" in proc.stdout and "dropper=has_calibrated" in proc.stdout
    )

    # the written YAML is a dropper option: compose it from an extra config dir and instantiate it
    conf = tmp_path / "extra_conf" / "dropper"
    conf.mkdir(parents=True)
    (conf / "has_calibrated.yaml").write_text((run_dir / "dropper_has_calibrated.yaml").read_text())
    cfg = compose_config(
        ["dropper=has_calibrated", f"hydra.searchpath=[file://{tmp_path / 'extra_conf'}]"], tmp_path
    )
    dropper = instantiate(cfg.dropper)
    assert type(dropper).__name__ == "HideAndSeek"
    assert dropper.hide_prob == summary["best"]["value"] and 0.0 < dropper.hide_prob < 1.0
    assert dropper.cell_sizes == (0.125,)
    assert OmegaConf.to_container(cfg.dropper) == summary["config"]
