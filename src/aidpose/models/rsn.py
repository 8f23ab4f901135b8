"""Residual Steps Network (RSN; Cai et al., ECCV 2020) and its multi-stage heatmap head (MSPN; Li et al., 2019).

One file for the family, as timm writes one: small blocks (:class:`ConvBN`, :class:`ResidualStepsBlock`), one
stage (a down path of residual-steps blocks and an up path that merges the resolutions back), the multi-stage
backbone :class:`RSN`, the head :class:`MSPNHead` (one heatmap predictor per stage and unit: the intermediate
supervision) and named constructors (:data:`RSN_ARCHITECTURES`, :func:`create_rsn_backbone`,
:func:`create_rsn_pose_net`).

Module names follow mmpose 1.x's ``RSN`` backbone and ``MSPNHead`` (``mmpose/models/backbones/rsn.py``,
``mmpose/models/heads/heatmap_heads/mspn_head.py``) so that their checkpoints load by a prefix map
(``python -m aidpose.import_weights``, maps in :mod:`aidpose.weights.names`): a
:class:`~aidpose.models.pose_net.PoseNet` of ``RSN`` + ``MSPNHead`` has exactly the tensor names and shapes of
mmpose's ``backbone.*`` and ``head.*``. The unusual attribute names
(``conv_bn_relu2_1_1``, ``multi_stage_rsn``, ``top.top``) are kept for that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from aidpose.models.heads import head_outputs
from aidpose.models.pose_net import PoseNet


class ConvBN(nn.Module):
    """Convolution (no bias) → BatchNorm → optional ReLU; mmcv's ``ConvModule`` with its ``conv``/``bn`` names."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class ResidualStepsBlock(nn.Module):
    """Residual steps block (RSB): a 1×1 convolution split into ``num_steps`` branches; branch ``i`` runs ``i + 1``
    3×3 convolutions, each also fed the previous branch's output at the same depth (the intra-level feature
    fusion of the paper); the branches' last outputs are concatenated, fused by a 1×1 convolution and added to
    the identity path.

    Each branch has ``in_channels * expand_times // stem_channels`` channels (26 for a 64-channel input, as
    mmpose's default ``expand_times=26``). The stride sits in the first 1×1 convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_steps: int,
        stride: int,
        expand_times: int,
        stem_channels: int,
    ) -> None:
        super().__init__()
        if num_steps < 2:
            raise ValueError(f"ResidualStepsBlock: num_steps={num_steps} must be at least 2")
        self.num_steps = num_steps
        self.branch_channels = in_channels * expand_times // stem_channels
        self.conv_bn_relu1 = ConvBN(in_channels, num_steps * self.branch_channels, 1, stride=stride)
        for i in range(num_steps):
            for j in range(i + 1):
                self.add_module(
                    f"conv_bn_relu2_{i + 1}_{j + 1}", ConvBN(self.branch_channels, self.branch_channels, 3)
                )
        self.conv_bn3 = ConvBN(num_steps * self.branch_channels, out_channels, 1, relu=False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = (
            ConvBN(in_channels, out_channels, 1, stride=stride, relu=False) if needs_projection else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.split(self.conv_bn_relu1(x), self.branch_channels, dim=1)
        previous: list[torch.Tensor] = []  # the outputs of branch i - 1, by depth
        last_outputs = []
        for i in range(self.num_steps):
            current: list[torch.Tensor] = []
            for j in range(i + 1):
                inputs = branches[i] if j == 0 else current[j - 1]
                if j < i:
                    inputs = inputs + previous[j]
                current.append(getattr(self, f"conv_bn_relu2_{i + 1}_{j + 1}")(inputs))
            last_outputs.append(current[-1])
            previous = current
        out = self.conv_bn3(torch.cat(last_outputs, dim=1))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class DownPath(nn.Module):
    """The encoder of one stage: ``len(num_blocks)`` units of residual-steps blocks; unit ``u`` has
    ``stem_channels * 2**u`` channels and halves the resolution (except the first). Modules ``layer1 … layerN``.

    In a later stage (``has_skip``) each unit's output gets the previous stage's two skip features added.
    """

    def __init__(
        self, num_blocks: Sequence[int], num_steps: int, stem_channels: int, expand_times: int, has_skip: bool
    ) -> None:
        super().__init__()
        self.has_skip = has_skip
        self.num_units = len(num_blocks)
        channels = stem_channels
        for unit, blocks in enumerate(num_blocks):
            out_channels = stem_channels * 2**unit
            layers = []
            for b in range(blocks):
                stride = 2 if unit > 0 and b == 0 else 1
                layers.append(
                    ResidualStepsBlock(channels, out_channels, num_steps, stride, expand_times, stem_channels)
                )
                channels = out_channels
            self.add_module(f"layer{unit + 1}", nn.Sequential(*layers))

    def forward(
        self, x: torch.Tensor, skips: tuple[list[torch.Tensor], list[torch.Tensor]] | None
    ) -> list[torch.Tensor]:
        """Features of every unit, lowest resolution first (the order the up path consumes them)."""
        out = []
        for unit in range(self.num_units):
            x = getattr(self, f"layer{unit + 1}")(x)
            if self.has_skip:
                x = x + skips[0][unit] + skips[1][unit]
            out.append(x)
        return out[::-1]


class UpUnit(nn.Module):
    """One unit of the decoder: the down path's feature at this resolution (``in_skip``) plus the previous unit's
    output upsampled bilinearly (``up_conv``; not in the first, lowest-resolution unit), then ReLU.

    ``gen_skip`` adds the two skip convolutions that feed the next stage's down path (``out_skip1`` of the down
    feature, ``out_skip2`` of this unit's output); the last unit with ``gen_cross_conv`` also gives the next
    stage's input (``cross_conv``, ``stem_channels`` channels).
    """

    def __init__(
        self,
        first: bool,
        last: bool,
        in_channels: int,
        unit_channels: int,
        stem_channels: int,
        gen_skip: bool,
        gen_cross_conv: bool,
    ) -> None:
        super().__init__()
        self.in_skip = ConvBN(in_channels, unit_channels, 1, relu=False)
        self.up_conv = None if first else ConvBN(unit_channels, unit_channels, 1, relu=False)
        if gen_skip:
            self.out_skip1 = ConvBN(in_channels, in_channels, 1)
            self.out_skip2 = ConvBN(unit_channels, in_channels, 1)
        self.gen_skip = gen_skip
        self.cross_conv = ConvBN(unit_channels, stem_channels, 1) if last and gen_cross_conv else None

    def forward(
        self, x: torch.Tensor, up: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(output, skip 1, skip 2, cross feature); the optional ones are None where this unit has none."""
        out = self.in_skip(x)
        if self.up_conv is not None:
            up = F.interpolate(up, size=x.shape[-2:], mode="bilinear", align_corners=True)
            out = out + self.up_conv(up)
        out = F.relu(out)
        skip1 = self.out_skip1(x) if self.gen_skip else None
        skip2 = self.out_skip2(out) if self.gen_skip else None
        cross = self.cross_conv(out) if self.cross_conv is not None else None
        return out, skip1, skip2, cross


class UpPath(nn.Module):
    """The decoder of one stage: units ``up1 … upN`` from the lowest resolution to the highest (stride 4)."""

    def __init__(
        self, num_units: int, unit_channels: int, stem_channels: int, gen_skip: bool, gen_cross_conv: bool
    ) -> None:
        super().__init__()
        self.num_units = num_units
        for u in range(num_units):
            in_channels = stem_channels * 2 ** (num_units - 1 - u)
            unit = UpUnit(
                u == 0,
                u == num_units - 1,
                in_channels,
                unit_channels,
                stem_channels,
                gen_skip,
                gen_cross_conv,
            )
            self.add_module(f"up{u + 1}", unit)

    def forward(
        self, features: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]] | None, torch.Tensor | None]:
        """Unit outputs (lowest resolution first), the skips for the next stage (highest resolution first, the
        down path's order) or None, and the next stage's input or None."""
        outputs: list[torch.Tensor] = []
        skip1, skip2 = [], []
        cross = None
        for u in range(self.num_units):
            out, s1, s2, c = getattr(self, f"up{u + 1}")(features[u], outputs[-1] if outputs else None)
            outputs.append(out)
            skip1.append(s1)
            skip2.append(s2)
            cross = c if c is not None else cross
        skips = (skip1[::-1], skip2[::-1]) if skip1[0] is not None else None
        return outputs, skips, cross


class RSNStage(nn.Module):
    """One hourglass-like stage: ``downsample`` (:class:`DownPath`) then ``upsample`` (:class:`UpPath`)."""

    def __init__(
        self,
        num_blocks: Sequence[int],
        num_steps: int,
        unit_channels: int,
        stem_channels: int,
        expand_times: int,
        first: bool,
        last: bool,
    ) -> None:
        super().__init__()
        self.downsample = DownPath(num_blocks, num_steps, stem_channels, expand_times, has_skip=not first)
        self.upsample = UpPath(
            len(num_blocks), unit_channels, stem_channels, gen_skip=not last, gen_cross_conv=not last
        )

    def forward(
        self, x: torch.Tensor, skips: tuple[list[torch.Tensor], list[torch.Tensor]] | None
    ) -> tuple[list[torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]] | None, torch.Tensor | None]:
        return self.upsample(self.downsample(x, skips))


class RSNStem(nn.Module):
    """7×7 stride-2 convolution, BN, ReLU, 3×3 stride-2 max pooling (mmpose's ``ResNet_top``; module ``top``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.top = nn.Sequential(
            ConvBN(3, channels, 7, stride=2), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(x)


class RSN(nn.Module):
    """Multi-stage Residual Steps Network backbone.

    Returns, per stage, the outputs of its up path's units, lowest resolution (stride 32 with 4 units) first and
    stride 4 last: ``features[stage][unit]`` with ``unit_channels`` channels each. Every stage after the first
    takes the previous stage's cross feature as input and adds its skip features in its down path.

    Args:
        num_stages: number of stacked stages (2 for 2×RSN-50).
        num_blocks: residual-steps blocks per down-path unit ([3, 4, 6, 3] for RSN-50, [2, 2, 2, 2] for RSN-18);
            its length is the number of units.
        num_steps: branches per residual-steps block.
        unit_channels: channels of the up path (and of the head's input).
        stem_channels: channels of the stem and of the first down-path unit.
        expand_times: branch width factor of the residual-steps blocks.
    """

    def __init__(
        self,
        num_stages: int,
        num_blocks: Sequence[int],
        num_steps: int = 4,
        unit_channels: int = 256,
        stem_channels: int = 64,
        expand_times: int = 26,
    ) -> None:
        super().__init__()
        if num_stages < 1 or len(num_blocks) < 2 or min(num_blocks) < 1:
            raise ValueError(
                f"RSN: needs num_stages >= 1 and at least 2 units of >= 1 block, got num_stages={num_stages}, "
                f"num_blocks={list(num_blocks)}"
            )
        self.num_stages = num_stages
        self.num_units = len(num_blocks)
        self.out_channels = unit_channels
        self.top = RSNStem(stem_channels)
        self.multi_stage_rsn = nn.ModuleList(
            RSNStage(
                num_blocks, num_steps, unit_channels, stem_channels, expand_times, s == 0, s == num_stages - 1
            )
            for s in range(num_stages)
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        x = self.top(x)
        skips = None
        features = []
        for stage in self.multi_stage_rsn:
            outputs, skips, x = stage(x, skips)
            features.append(outputs)
        return features


class HeatmapPredictor(nn.Module):
    """One unit's heatmaps: 1×1 conv-BN-ReLU, 3×3 conv-BN to ``num_keypoints`` channels (``conv_layers``), then
    bilinear (align_corners) resizing to ``size``."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            ConvBN(in_channels, in_channels, 1), ConvBN(in_channels, num_keypoints, 3, relu=False)
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.conv_layers(x), size=size, mode="bilinear", align_corners=True)


class MSPNHead(nn.Module):
    """Multi-stage multi-unit heatmap head: one :class:`HeatmapPredictor` per stage and unit (``predict_layers``,
    stage-major, lowest resolution first, as mmpose's ``MSPNHead``).

    Returns ``num_stages * num_units`` heatmaps ``(B, K, h, w)``, all at the resolution of the stage's last
    (stride-4) unit: outputs ``[s * num_units + u]`` is stage ``s``, unit ``u``. Every one is supervised in
    training (with its own Gaussian kernel, :mod:`aidpose.models.rsn_loss`); the last one is decoded. mmpose
    resizes to a fixed ``out_shape`` (64×48 at 256×192), which is that resolution. ``out_channels``: the
    channels of every output (the codec's ``output_channels``, one entry per stage and unit).
    """

    def __init__(
        self, in_channels: int, out_channels: Sequence[int], num_stages: int, num_units: int
    ) -> None:
        super().__init__()
        self.num_stages = num_stages
        self.num_units = num_units
        channels = head_outputs(out_channels, num_stages * num_units, "MSPNHead")
        self.predict_layers = nn.ModuleList(HeatmapPredictor(in_channels, c) for c in channels)
        init_weights(self)

    def forward(self, features: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        shape = [len(stage) for stage in features]
        if shape != [self.num_units] * self.num_stages:
            raise ValueError(
                f"MSPNHead(num_stages={self.num_stages}, num_units={self.num_units}) got features of "
                f"{len(shape)} stages with {shape} units: set the head's num_stages/num_units to the backbone's"
            )
        outputs = []
        for s, stage in enumerate(features):
            size = tuple(stage[-1].shape[-2:])
            for u, feature in enumerate(stage):
                outputs.append(self.predict_layers[s * self.num_units + u](feature, size))
        return outputs


def init_weights(module: nn.Module) -> None:
    """mmpose's initialisation of RSN and MSPNHead: Kaiming-normal convolutions (fan-out, ReLU), unit BN."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# The zoo's RSN family (mmpose 1.x configs td-hm_{rsn18,rsn50,2xrsn50,3xrsn50}_8xb32-210e_coco-256x192.py):
# 4 units, 4 steps, 256 up-path channels throughout.
RSN_ARCHITECTURES: dict[str, dict] = {
    "rsn18": {"num_stages": 1, "num_blocks": (2, 2, 2, 2)},
    "rsn50": {"num_stages": 1, "num_blocks": (3, 4, 6, 3)},
    "rsn50_x2": {"num_stages": 2, "num_blocks": (3, 4, 6, 3)},
    "rsn50_x3": {"num_stages": 3, "num_blocks": (3, 4, 6, 3)},
}


def create_rsn_backbone(name: str, **overrides) -> RSN:
    """The RSN backbone called ``name`` (a key of :data:`RSN_ARCHITECTURES`); ``overrides`` replace its arguments."""
    if name not in RSN_ARCHITECTURES:
        raise ValueError(f"unknown RSN architecture {name!r}; choose one of {sorted(RSN_ARCHITECTURES)}")
    return RSN(**{**RSN_ARCHITECTURES[name], **overrides})


def create_rsn_pose_net(name: str, num_keypoints: int = 17, **overrides) -> PoseNet:
    """RSN backbone + its multi-stage head, named as mmpose's (``backbone.*``, ``head.*``)."""
    backbone = create_rsn_backbone(name, **overrides)
    head = partial(MSPNHead, num_stages=backbone.num_stages, num_units=backbone.num_units)
    return PoseNet(backbone, head, [num_keypoints] * (backbone.num_stages * backbone.num_units))
