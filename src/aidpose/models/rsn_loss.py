"""RSN's multi-stage loss: every stage and unit's heatmaps against the target of its kernel level, a plain
weighted MSE on the coarse units and online hard keypoint mining (OHKM) on each stage's last unit.

Mirrors mmpose 1.x: ``KeypointMSELoss(use_target_weight=True)``, ``KeypointOHKMMSELoss(use_target_weight=True,
topk=8)`` (``mmpose/models/losses/heatmap_loss.py``) and ``MSPNHead.loss`` (``level_indices``: which target
level each output is trained on). mmpose's 2×RSN-50 (``td-hm_2xrsn50_8xb32-210e_coco-256x192.py``): kernels
``[15, 11, 9, 7, 5]``, ``level_indices = [0, 1, 2, 3, 1, 2, 3, 4]``, ``loss_weights = [0.25, 0.25, 0.25, 1] * 2``,
OHKM on outputs 3 and 7 (each stage's stride-4 unit), the others MSE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


def keypoint_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``mean(weight * (pred - target)²)`` over batch, joints and pixels; ``weight`` is ``(B, K)``."""
    return ((pred.float() - target.float()) ** 2 * weight[:, :, None, None].float()).mean()


def ohkm_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, topk: int = 8) -> torch.Tensor:
    """Online hard keypoint mining: per sample the mean of its ``topk`` largest per-joint losses
    ``mean_pixels((w·pred - w·target)²)``, then the mean over the batch."""
    num_joints = pred.shape[1]
    if not 0 < topk <= num_joints:
        raise ValueError(f"OHKM topk={topk} must be in 1..{num_joints} (the number of keypoints)")
    w = weight[:, :, None, None].float()
    per_joint = ((pred.float() * w - target.float() * w) ** 2).mean(dim=(2, 3))
    return per_joint.topk(topk, dim=1).values.mean()


def multi_stage_heatmap_loss(
    outputs: Sequence[torch.Tensor],
    targets: torch.Tensor,
    weights: torch.Tensor,
    level_indices: Sequence[int],
    loss_weights: Sequence[float],
    ohkm: Sequence[bool],
    topk: int = 8,
) -> torch.Tensor:
    """Sum over outputs ``i`` of ``loss_weights[i] × loss(outputs[i], targets[:, level_indices[i]], weights)``.

    Args:
        outputs: the head's heatmaps, one ``(B, K, h, w)`` per stage and unit (stage-major).
        targets: ``(B, L, K, h, w)``, one target per kernel level.
        weights: ``(B, K)`` joint weights, shared by every level.
        level_indices, loss_weights, ohkm: per output, its target level, its factor and whether it uses OHKM
            (else the weighted MSE).
    """
    n = len(outputs)
    if not len(level_indices) == len(loss_weights) == len(ohkm) == n:
        raise ValueError(
            f"multi-stage loss: {n} outputs need as many level_indices, loss_weights and ohkm entries, got "
            f"{len(level_indices)}, {len(loss_weights)}, {len(ohkm)}"
        )
    if max(level_indices) >= targets.shape[1]:
        raise ValueError(
            f"level_indices {list(level_indices)} name a level beyond the {targets.shape[1]} targets"
        )
    total = outputs[0].new_zeros((), dtype=torch.float32)
    for out, level, factor, hard in zip(outputs, level_indices, loss_weights, ohkm, strict=True):
        target = targets[:, level]
        loss = ohkm_mse(out, target, weights, topk) if hard else keypoint_mse(out, target, weights)
        total = total + factor * loss
    return total


class MultiStageHeatmapLoss(nn.Module):
    """:func:`multi_stage_heatmap_loss` with its settings bound, as a paradigm's loss ``(outputs, batch) -> terms``:
    reads the targets ``heatmaps`` ``(B, L, K, h, w)`` and ``keypoint_weights`` ``(B, K)``
    (:class:`aidpose.codecs.megvii_heatmap.MegviiHeatmapCodec`)."""

    def __init__(
        self, level_indices: Sequence[int], loss_weights: Sequence[float], ohkm: Sequence[bool], topk: int = 8
    ) -> None:
        super().__init__()
        self.level_indices = list(level_indices)
        self.loss_weights = list(loss_weights)
        self.ohkm = list(ohkm)
        self.topk = topk

    def forward(
        self, outputs: Sequence[torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        loss = multi_stage_heatmap_loss(
            outputs, targets["heatmaps"], targets["keypoint_weights"], self.level_indices, self.loss_weights,
            self.ohkm, self.topk,
        )  # fmt: skip
        return {"loss": loss}
