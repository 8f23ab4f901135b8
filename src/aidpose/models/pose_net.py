"""A top-down pose network: backbone → head → one heatmap per keypoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    @torch.no_grad()
    def output_size(self, input_size: Sequence[int]) -> tuple[int, int] | list[tuple[int, int]]:
        """(width, height) of the heatmaps for an input of ``input_size`` = (width, height): one forward
        pass of a zero image in eval mode (the training mode is restored, BatchNorm statistics untouched).
        A head with several outputs (bottom-up) gives one (width, height) per output."""
        was_training = self.training
        self.eval()
        out = self(torch.zeros(1, 3, int(input_size[1]), int(input_size[0])))
        self.train(was_training)
        if isinstance(out, (list, tuple)):
            return [(int(o.shape[-1]), int(o.shape[-2])) for o in out]
        return int(out.shape[-1]), int(out.shape[-2])
