"""The stages of a training command: one for S1/S2, two for S3 (without, then with the dropper).

Each stage is a full training run in its own folder: built fresh (model, optimizer, LR schedule), started
from ``init_weights`` (weights only) or resumed from ``ckpt_path`` (everything). ``aidpose.train`` runs the
list this module returns, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STAGE1, STAGE2 = "stage1", "stage2"


@dataclass(frozen=True)
class Stage:
    """One training run of a command.

    Attributes:
        name: ``""`` for a one-stage schedule, else ``"stage1"``/``"stage2"`` (stored in its checkpoints).
        output_dir: its run folder (the command's run folder, or ``<run folder>/<name>``).
        dropper: the configured dropper is on (S3's stage 1 trains without it).
        init_weights: checkpoint whose model weights start the run (None: fresh model).
        ckpt_path: checkpoint to resume the whole training state from (None: start at epoch 0).
    """

    name: str
    output_dir: Path
    dropper: bool
    init_weights: str | None
    ckpt_path: str | None


def plan_stages(
    stages: int,
    run_dir: Path,
    init_weights: str | None = None,
    ckpt_path: str | None = None,
    ckpt_stage: str | None = None,
    stage1_ckpt: str | None = None,
) -> list[Stage]:
    """The stages to run.

    Args:
        stages: 1 (S1, S2) or 2 (S3: ``stage1`` without the dropper, ``stage2`` with it from stage 1's
            final weights, its ``last.ckpt``).
        run_dir: the command's run folder.
        init_weights: weights-only start of the first stage run.
        ckpt_path, ckpt_stage: a checkpoint to resume and the stage it was saved in (``aidpose_stage``):
            resuming a ``stage2`` checkpoint skips stage 1, a ``stage1`` one resumes stage 1 then runs stage 2.
        stage1_ckpt: a finished stage 1 (S3 only): stage 1 is skipped, stage 2 starts from its weights.
    """
    if stages == 1:
        return [Stage("", run_dir, True, init_weights, ckpt_path)]
    if ckpt_path is not None and ckpt_stage not in (STAGE1, STAGE2):
        raise ValueError(
            f"ckpt_path={ckpt_path} was not saved by a stage of an S3 schedule (s3, bottomup_s3; its stage is "
            f"{ckpt_stage!r}): resume it with its own schedule, or start S3's stage 2 from it with "
            "schedule.stage1_ckpt=PATH"
        )
    if ckpt_stage == STAGE2:
        return [Stage(STAGE2, run_dir / STAGE2, True, None, ckpt_path)]
    stage2 = Stage(STAGE2, run_dir / STAGE2, True, stage1_ckpt or str(run_dir / STAGE1 / "last.ckpt"), None)
    if stage1_ckpt is not None:
        return [stage2]
    return [Stage(STAGE1, run_dir / STAGE1, False, init_weights, ckpt_path), stage2]
