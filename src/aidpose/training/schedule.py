"""The paper's training schedules (S1/S2/S3) as pure functions of the step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Epoch-based step schedule with linear warm-up, as used by HRNet/UDP/AID.

    ``scale`` multiplies every epoch count (milestones included) so that short CPU runs keep the
    schedule's shape: S1 (210 epochs, drops at 170/200) at scale 0.1 is 21 epochs, drops at 17/20. Every
    phase keeps at least one epoch: at scale 0.01 S1 is 4 epochs with drops at 2 and 3.

    ``stages=2`` is S3 (``aidpose.training.stages``): this schedule twice, without then with the dropper;
    ``stage1_ckpt`` (a finished stage 1's ``last.ckpt``) skips the first.
    """

    name: str
    epochs: int
    milestones: Sequence[int]
    lr: float
    gamma: float = 0.1
    warmup_steps: int = 500
    warmup_ratio: float = 0.001
    scale: float = 1.0
    stages: int = 1
    stage1_ckpt: str | None = None

    def __post_init__(self) -> None:
        if list(self.milestones) != sorted(set(self.milestones)) or min(self.milestones or [1]) < 1:
            raise ValueError(f"schedule {self.name}: milestones {list(self.milestones)} must increase from 1")
        if self.milestones and self.milestones[-1] >= self.epochs:
            raise ValueError(
                f"schedule {self.name}: milestone {self.milestones[-1]} is not before epoch {self.epochs}"
            )
        if self.stages not in (1, 2):
            raise ValueError(f"schedule {self.name}: stages={self.stages}; 1 (S1/S2) or 2 (S3)")

    @property
    def scaled_milestones(self) -> list[int]:
        """Milestones × ``scale``, rounded, then pushed apart so every LR phase keeps at least one epoch."""
        scaled: list[int] = []
        for m in self.milestones:
            scaled.append(max(round(m * self.scale), scaled[-1] + 1 if scaled else 1))
        return scaled

    @property
    def scaled_epochs(self) -> int:
        """Epochs × ``scale``, rounded, at least one epoch after the last (scaled) milestone."""
        last = self.scaled_milestones[-1] if self.milestones else 0
        return max(round(self.epochs * self.scale), last + 1, 1)


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
