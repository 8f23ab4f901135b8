"""The S1/S2/S3 schedules (top-down and bottom-up): scaled epochs/milestones (against the YAML files), the LR factor,
S3's stages."""

import itertools
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from aidpose.training.schedule import Schedule, lr_factor
from aidpose.training.stages import Stage, plan_stages

CONF = Path(__file__).resolve().parents[1] / "conf" / "schedule"


def schedule_from_yaml(name: str, scale: float) -> tuple[Schedule, dict]:
    """The schedule of ``conf/schedule/<name>.yaml`` (an S3 read through its S1 in ``defaults``) at ``scale``."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    parents = [d for d in raw.pop("defaults", []) if d != "_self_"]
    merged = {}
    for parent in parents:
        merged.update(OmegaConf.to_container(OmegaConf.load(CONF / f"{parent}.yaml")))
    merged.update(raw)
    return instantiate({**merged, "scale": scale}), merged


# (schedule, scale) → (epochs, milestones), computed by hand from the YAML values (S1/S3: 210, [170, 200];
# S2: 420, [380, 410]; bottom-up S3: 300, [200, 260]): round(x × scale), each milestone at least one epoch after the previous one (or epoch 0),
# the last epoch at least one after the last milestone
@pytest.mark.parametrize(
    ("name", "scale", "epochs", "milestones"),
    [
        ("s1", 1.0, 210, [170, 200]),
        ("s1", 0.1, 21, [17, 20]),
        ("s1", 0.05, 11, [8, 10]),  # round(10.5) = 10 (banker's), round(8.5) = 8
        ("s1", 0.01, 4, [2, 3]),  # round(1.7)=2, round(2.0)=2 → pushed to 3, round(2.1)=2 → 4
        ("s1", 0.001, 3, [1, 2]),  # every phase keeps one epoch
        ("s2", 1.0, 420, [380, 410]),
        ("s2", 0.1, 42, [38, 41]),
        ("s2", 0.01, 6, [4, 5]),  # round(3.8)=4, round(4.1)=4 → 5, round(4.2)=4 → 6
        ("s3", 0.1, 21, [17, 20]),
        ("s3", 0.01, 4, [2, 3]),
        ("bottomup_s3", 1.0, 300, [200, 260]),
        ("bottomup_s3", 0.03, 9, [6, 8]),  # the CPU default's scale: 6.0 → 6, 7.8 → 8, 9.0 → 9
    ],
)
def test_scaled_schedule_against_yaml(name, scale, epochs, milestones):
    schedule, raw = schedule_from_yaml(name, scale)
    assert schedule.scaled_milestones == milestones
    assert schedule.scaled_epochs == epochs
    # the shape: every phase (before the first drop, between drops, after the last) has ≥ 1 epoch
    bounds = [0, *schedule.scaled_milestones, schedule.scaled_epochs]
    assert all(b > a for a, b in itertools.pairwise(bounds))
    assert len(schedule.scaled_milestones) == len(raw["milestones"])


def test_s1_scaled_keeps_shape():
    s1 = Schedule(name="s1", epochs=210, milestones=[170, 200], lr=1e-3, scale=0.1)
    assert s1.scaled_epochs == 21
    assert s1.scaled_milestones == [17, 20]
    s2 = Schedule(name="s2", epochs=420, milestones=[380, 410], lr=1e-3)
    assert (s2.scaled_epochs, s2.scaled_milestones) == (420, [380, 410])


@pytest.mark.parametrize(("s3_name", "s1_name"), [("s3", "s1"), ("bottomup_s3", "bottomup_s1")])
def test_s3_is_s1_in_two_stages(s3_name, s1_name):
    s1, _ = schedule_from_yaml(s1_name, 1.0)
    s3, _ = schedule_from_yaml(s3_name, 1.0)
    assert (s3.name, s3.stages, s3.stage1_ckpt) == (s3_name, 2, None)
    assert (s3.epochs, list(s3.milestones), s3.lr) == (s1.epochs, list(s1.milestones), s1.lr)


def test_bad_milestones_are_errors():
    with pytest.raises(ValueError, match="must increase"):
        Schedule(name="x", epochs=10, milestones=[5, 3], lr=1e-3)
    with pytest.raises(ValueError, match="not before epoch 10"):
        Schedule(name="x", epochs=10, milestones=[10], lr=1e-3)


def test_plan_stages(tmp_path):
    run = tmp_path
    assert plan_stages(1, run, init_weights="w.ckpt") == [Stage("", run, True, "w.ckpt", None)]
    stage1, stage2 = plan_stages(2, run)
    assert stage1 == Stage("stage1", run / "stage1", False, None, None)  # no dropper
    assert stage2 == Stage("stage2", run / "stage2", True, str(run / "stage1" / "last.ckpt"), None)
    assert plan_stages(2, run, stage1_ckpt="s1.ckpt") == [
        Stage("stage2", run / "stage2", True, "s1.ckpt", None)
    ]
    # resuming: a stage-2 checkpoint skips stage 1, a stage-1 checkpoint resumes stage 1 then runs stage 2
    assert plan_stages(2, run, ckpt_path="c", ckpt_stage="stage2") == [
        Stage("stage2", run / "stage2", True, None, "c")
    ]
    assert [s.ckpt_path for s in plan_stages(2, run, ckpt_path="c", ckpt_stage="stage1")] == ["c", None]
    with pytest.raises(ValueError, match=r"schedule\.stage1_ckpt"):
        plan_stages(2, run, ckpt_path="c", ckpt_stage=None)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.001),  # warm-up start: warmup_ratio
        (50, 0.001 + 0.999 * 0.5),  # half-way through a 100-step warm-up
        (100, 1.0),  # warm-up done, before the first milestone
        (10 * 17 - 1, 1.0),  # last step of epoch 16
        (10 * 17, 0.1),  # first step of epoch 17 (milestone)
        (10 * 20, 0.01),  # epoch 20: second milestone
    ],
)
def test_lr_factor(step, expected):
    got = lr_factor(
        step, steps_per_epoch=10, milestones=[17, 20], gamma=0.1, warmup_steps=100, warmup_ratio=0.001
    )
    assert got == pytest.approx(expected)


def test_warmup_and_decay_multiply():
    # a milestone reached during warm-up scales the warm-up ramp
    got = lr_factor(15, steps_per_epoch=10, milestones=[1], gamma=0.1, warmup_steps=20, warmup_ratio=0.0)
    assert got == pytest.approx(0.1 * 15 / 20)
