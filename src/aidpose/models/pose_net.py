"""A pose network of either paradigm: backbone → head, the head's outputs as the codec asks for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from aidpose.models.backbones import TimmBackbone


class PoseNet(nn.Module):
    """Backbone + head. ``head`` is a callable ``(in_channels, out_channels) -> nn.Module`` (a Hydra
    ``_partial_`` head config), so the head fits the backbone it sits on; ``out_channels`` comes from the
    codec (``codec.output_channels``): an int for a head with one output, a list for a head returning a list."""

    def __init__(
        self, backbone: TimmBackbone, head: Callable[..., nn.Module], out_channels: int | Sequence[int]
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head(in_channels=backbone.out_channels, out_channels=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        return self.head(self.backbone(x))

    @torch.no_grad()
    def output_sizes(self, input_size: Sequence[int]) -> list[tuple[int, int]]:
        """(width, height) of every output for an input of ``input_size`` = (width, height) (one entry for a
        head with one output): one forward pass of a zero image in eval mode (the training mode is restored,
        BatchNorm statistics untouched)."""
        was_training = self.training
        self.eval()
        out = self(torch.zeros(1, 3, int(input_size[1]), int(input_size[0])))
        self.train(was_training)
        outputs = out if isinstance(out, (list, tuple)) else [out]
        return [(int(o.shape[-1]), int(o.shape[-2])) for o in outputs]
