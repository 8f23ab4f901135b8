"""The loss of UDP's combined target (:mod:`aidpose.codecs.udp_combined`): label maps and offset maps.

Mirrors mmpose 1.x ``CombinedTargetMSELoss`` (``mmpose/models/losses/heatmap_loss.py``) and the authors' UDP-Pose
``mmpose`` branch (``mmpose/models/losses/mse_loss.py``): ``0.5 · MSE`` of the weighted label maps plus ``0.5 · MSE``
of each offset map masked by the (weighted) ground-truth label: offsets are trained on the disc only.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def combined_target_mse_loss(
    output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor, use_target_weight: bool = True
) -> torch.Tensor:
    """``output``/``target`` ``(B, 3K, h, w)`` (label, x-offset, y-offset per joint), ``target_weight`` ``(B, K)``.

    With ``m = w · label_gt``: ``0.5 · [mean((w·label_pred - m)²) + mean((m·x_pred - m·x_gt)²)
    + mean((m·y_pred - m·y_gt)²)]`` over batch, joints and pixels (``w = 1`` without ``use_target_weight``).
    """
    b, c, h, w = output.shape
    if c % 3 != 0 or target.shape != output.shape:
        raise ValueError(
            f"combined-target loss: output {tuple(output.shape)} and target {tuple(target.shape)} must be equal "
            "with 3 channels per keypoint"
        )
    pred = output.float().reshape(b, c // 3, 3, h * w)
    gt = target.float().reshape(b, c // 3, 3, h * w)
    weight = target_weight.float()[:, :, None] if use_target_weight else torch.ones_like(gt[:, :, 0, :1])
    mask = gt[:, :, 0] * weight
    label = (pred[:, :, 0] * weight - mask) ** 2
    offsets = ((pred[:, :, 1:] - gt[:, :, 1:]) * mask[:, :, None]) ** 2
    return 0.5 * (label.mean() + offsets[:, :, 0].mean() + offsets[:, :, 1].mean())


class CombinedTargetMSELoss(nn.Module):
    """:func:`combined_target_mse_loss` × ``loss_weight`` as a paradigm's loss ``(outputs, batch) -> terms``:
    reads the targets ``heatmaps`` ``(B, 3K, h, w)`` and ``keypoint_weights`` ``(B, K)``
    (:class:`aidpose.codecs.udp_combined.UDPCombinedCodec`)."""

    def __init__(self, use_target_weight: bool = True, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(self, outputs: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss = combined_target_mse_loss(
            outputs, targets["heatmaps"], targets["keypoint_weights"], self.use_target_weight
        )
        return {"loss": self.loss_weight * loss}
