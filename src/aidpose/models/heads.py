"""Heatmap heads: SimpleBaseline's deconvolution head, HRNet's 1×1 head and the bottom-up heads.

A head is built with ``in_channels`` (the backbone's) and ``out_channels`` (the codec's
``output_channels``: an int for a head with one output, one int per output for a head returning a list).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DeconvHead(nn.Module):
    """SimpleBaseline head (Xiao et al., 2018): ``num_deconv_layers`` × (4×4 deconv stride 2, BN, ReLU), 1×1 conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_deconv_layers: int = 3,
        deconv_channels: int = 256,
        deconv_kernel: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_deconv_layers):
            layers += deconv_block(channels, deconv_channels, deconv_kernel)
            channels = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(channels, out_channels, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(x))


class ConvHead(nn.Module):
    """HRNet head (Sun et al., 2019): one 1×1 convolution on the highest-resolution branch."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.final = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(x)


def deconv_block(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    """×2 upsampling as SimpleBaseline/HigherHRNet: a stride-2 transposed convolution (kernel 4, 3 or 2), BN, ReLU."""
    padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]
    deconv = nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel,
        stride=2,
        padding=padding,
        output_padding=output_padding,
        bias=False,
    )
    return [deconv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


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


def head_outputs(out_channels: Sequence[int], count: int, head: str) -> list[int]:
    """The channels of each of a multi-output head's ``count`` outputs, or a clear error."""
    channels = [int(c) for c in out_channels]
    if len(channels) != count:
        raise ValueError(
            f"{head} has {count} output(s), the codec asks for {len(channels)} ({channels} channels): pick the "
            "head whose outputs the codec describes (bottom-up: paradigm/head=higherhrnet|simple, or "
            "paradigm.codec.output_strides, with_heatmaps and with_tags set to this head's outputs)"
        )
    return channels


class SimpleBottomUpHead(nn.Module):
    """Bottom-up HRNet head (the paper's "HRNet" rows): one 1×1 convolution giving K heatmaps and K tags
    at the backbone's resolution (1/4), ``out_channels = [2K]``. Returns a one-element list ``[(B, 2K, h, w)]``."""

    def __init__(self, in_channels: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        (channels,) = head_outputs(out_channels, 1, "SimpleBottomUpHead")
        self.final = nn.Conv2d(in_channels, channels, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.final(x)]


class HigherHRNetHead(nn.Module):
    """HigherHRNet head (Cheng et al., 2020) on the stride-4 branch.

    A 1×1 convolution gives K heatmaps + K tags at 1/4; the features concatenated with that output go
    through a deconvolution (×2, BN, ReLU) and ``num_basic_blocks`` residual blocks, and a 1×1
    convolution gives K heatmaps at 1/2: ``out_channels = [2K, K]``, returns ``[(B, 2K, h, w), (B, K, 2h, 2w)]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Sequence[int],
        deconv_channels: int = 32,
        deconv_kernel: int = 4,
        num_basic_blocks: int = 4,
    ) -> None:
        super().__init__()
        from timm.models.resnet import BasicBlock

        quarter, half = head_outputs(out_channels, 2, "HigherHRNetHead")
        self.final_quarter = nn.Conv2d(in_channels, quarter, kernel_size=1)
        self.deconv = nn.Sequential(
            *deconv_block(in_channels + quarter, deconv_channels, deconv_kernel),
            *[BasicBlock(deconv_channels, deconv_channels) for _ in range(num_basic_blocks)],
        )
        self.final_half = nn.Conv2d(deconv_channels, half, kernel_size=1)
        init_head(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        quarter = self.final_quarter(x)
        half = self.final_half(self.deconv(torch.cat([x, quarter], dim=1)))
        return [quarter, half]
