"""The S1/S2 schedules: scaled epochs/milestones and the LR factor, against hand-computed values."""

import pytest

from aidpose.training.schedule import Schedule, lr_factor


def test_s1_scaled_keeps_shape():
    s1 = Schedule(name="s1", epochs=210, milestones=[170, 200], lr=1e-3, scale=0.1)
    assert s1.scaled_epochs == 21
    assert s1.scaled_milestones == [17, 20]
    s2 = Schedule(name="s2", epochs=420, milestones=[380, 410], lr=1e-3)
    assert (s2.scaled_epochs, s2.scaled_milestones) == (420, [380, 410])


def test_tiny_scale_never_gives_zero_epochs():
    s = Schedule(name="s1", epochs=210, milestones=[170, 200], lr=1e-3, scale=0.001)
    assert s.scaled_epochs == 1
    assert s.scaled_milestones == [1, 1]


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
