"""Heatmap heads: SimpleBaseline's deconvolution head and HRNet's 1×1 convolution head."""

from __future__ import annotations

import torch
from torch import nn


class DeconvHead(nn.Module):
    """SimpleBaseline head (Xiao et al., 2018): ``num_deconv_layers`` × (4×4 deconv stride 2, BN, ReLU), 1×1 conv."""

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
    ) -> None:
        super().__init__()
        padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[deconv_kernel]
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_deconv_layers):
            layers += [
                nn.ConvTranspose2d(
                    channels,
                    deconv_channels,
                    deconv_kernel,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=False,
                ),
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            channels = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(channels, num_keypoints, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(x))


class ConvHead(nn.Module):
    """HRNet head (Sun et al., 2019): one 1×1 convolution on the highest-resolution branch."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.final = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(x)


def init_head(head: nn.Module) -> None:
    """Initialisation used by SimpleBaseline/HRNet heads: N(0, 0.001) weights, zero biases, unit BN."""
    for m in head.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
