"""Top-down heatmap loss. A paradigm's loss takes the network's outputs and the batch, reads the codec's targets
by name and returns its terms: ``loss`` (what is optimised) and any others to log."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class KeypointMSELoss(nn.Module):
    """Mean squared error between heatmaps, each joint weighted by its target weight.

    Matches the HRNet/mmpose definition: ``0.5 * mean((w * pred - w * gt) ** 2)`` averaged over
    batch, joints and pixels (the 0.5 is theirs; it only rescales the learning signal). Reads the
    targets ``heatmaps`` (B, K, h, w) and ``keypoint_weights`` (B, K) (``UDPHeatmapCodec.encode``).
    """

    def __init__(self, use_target_weight: bool = True, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(self, outputs: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred, target = outputs, targets["heatmaps"]
        if self.use_target_weight:
            w = targets["keypoint_weights"][:, :, None, None].to(pred.dtype)
            pred, target = pred * w, target * w
        return {"loss": 0.5 * self.loss_weight * torch.mean((pred.float() - target.float()) ** 2)}
