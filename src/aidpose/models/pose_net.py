"""A top-down pose network: backbone → head → one heatmap per keypoint."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aidpose.models.backbones import TimmBackbone


class PoseNet(nn.Module):
    """Backbone + heatmap head. ``head`` is a callable ``(in_channels, num_keypoints) -> nn.Module``
    (a Hydra ``_partial_`` head config), so the head always fits the backbone it sits on."""

    def __init__(self, backbone: TimmBackbone, head: Callable[..., nn.Module], num_keypoints: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head(in_channels=backbone.out_channels, num_keypoints=num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
