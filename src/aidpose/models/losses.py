"""Heatmap losses."""

from __future__ import annotations

import torch
from torch import nn


class KeypointMSELoss(nn.Module):
    """Mean squared error between heatmaps, each joint weighted by its target weight.

    Matches the HRNet/mmpose definition: ``0.5 * mean((w * pred - w * gt) ** 2)`` averaged over
    batch, joints and pixels (the 0.5 is theirs; it only rescales the learning signal).
    """

    def __init__(self, use_target_weight: bool = True, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        if self.use_target_weight:
            w = target_weight[:, :, None, None].to(pred.dtype)
            pred, target = pred * w, target * w
        return 0.5 * self.loss_weight * torch.mean((pred.float() - target.float()) ** 2)
