"""The paper's training schedules (S1/S2) as pure functions of the step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Epoch-based step schedule with linear warm-up, as used by HRNet/UDP/AID.

    ``scale`` multiplies every epoch count (milestones included) so that short CPU runs keep the
    schedule's shape: S1 (210 epochs, drops at 170/200) at scale 0.1 is 21 epochs, drops at 17/20.
    """

    name: str
    epochs: int
    milestones: Sequence[int]
    lr: float
    gamma: float = 0.1
    warmup_steps: int = 500
    warmup_ratio: float = 0.001
    scale: float = 1.0

    @property
    def scaled_epochs(self) -> int:
        return max(1, round(self.epochs * self.scale))

    @property
    def scaled_milestones(self) -> list[int]:
        return [max(1, round(m * self.scale)) for m in self.milestones]


def lr_factor(
    step: int,
    steps_per_epoch: int,
    milestones: Sequence[int],
    gamma: float,
    warmup_steps: int,
    warmup_ratio: float,
) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based).

    Linear warm-up from ``warmup_ratio`` to 1 over ``warmup_steps`` steps, times ``gamma`` for every
    milestone epoch already reached (epoch = ``step // steps_per_epoch``).
    """
    epoch = step // max(1, steps_per_epoch)
    decay = gamma ** sum(epoch >= m for m in milestones)
    if step < warmup_steps:
        return decay * (warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps)
    return decay
