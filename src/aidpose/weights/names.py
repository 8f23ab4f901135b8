"""How aidpose's backbones and heads are named in the reference implementations (mmpose, HRNet, HigherHRNet).

One :class:`NameMap` per aidpose module class turns a reference tensor name (relative to the backbone or the
head) into aidpose's (relative to ``net.backbone`` or ``net.head``). The reference implementations name their
layers alike (mmpose took HRNet's and SimpleBaseline's module names, UDP-Pose is mmpose), so one map per class
serves every format; the formats only differ in the prefixes of :mod:`aidpose.weights.formats`.

Adding a model is one entry here per new module class: the rules from the reference's names to the module's own
(RSN and its MSPNHead were written with mmpose 1.x's module names: their rule is the identity).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class NameMap:
    """Rules ``(pattern, replacement)`` tried in order; the first pattern that matches a reference name gives
    the aidpose name (``re.sub`` of that match); a name no rule matches is not one of this module's."""

    rules: tuple[tuple[str, Replacement], ...]

    def to_aidpose(self, name: str) -> str | None:
        for pattern, replacement in self.rules:
            if re.match(pattern, name):
                return re.sub(pattern, replacement, name, count=1)
        return None


def _basic_block(match: re.Match[str]) -> str:
    # HigherHRNet: deconv_layers.0 = [Sequential(deconv, BN, ReLU), Sequential(BasicBlock) × n];
    # aidpose's HigherHRNetHead.deconv = [deconv, BN, ReLU, BasicBlock × n]
    return f"deconv.{int(match[1]) + 2}."


# timm builds HRNet and ResNet with the reference's module names (conv1, bn1, layer1, transition1, stage2, ...)
BACKBONES: dict[str, NameMap] = {
    "aidpose.models.backbones.TimmBackbone": NameMap(((r"^", "body."),)),
    # mmpose 1.x RSN (mmpose/models/backbones/rsn.py): top.*, multi_stage_rsn.<stage>.{downsample,upsample}.*
    "aidpose.models.rsn.RSN": NameMap(((r"^(?=top\.|multi_stage_rsn\.)", ""),)),
}

HEADS: dict[str, NameMap] = {
    # mmpose 1.x MSPNHead (mmpose/models/heads/heatmap_heads/mspn_head.py): predict_layers.<stage·units+unit>.*
    "aidpose.models.rsn.MSPNHead": NameMap(((r"^(?=predict_layers\.)", ""),)),
    # HRNet's 1×1 head: mmpose HeatmapHead / TopDownSimpleHead without deconvolutions, HRNet's final_layer
    "aidpose.models.heads.ConvHead": NameMap(((r"^final_layer\.", "final."),)),
    # SimpleBaseline: (deconv, BN, ReLU) × n in one flat Sequential everywhere, then final_layer
    "aidpose.models.heads.DeconvHead": NameMap(
        ((r"^deconv_layers\.", "deconv."), (r"^final_layer\.", "final."))
    ),
    # HigherHRNet (mmpose 0.x BottomUpHigherResolutionHead, HigherHRNet's PoseHigherResolutionNet)
    "aidpose.models.heads.HigherHRNetHead": NameMap(
        (
            (r"^final_layers\.0\.", "final_quarter."),
            (r"^final_layers\.1\.", "final_half."),
            (r"^deconv_layers\.0\.0\.([012])\.", r"deconv.\1."),
            (r"^deconv_layers\.0\.([1-9]\d*)\.0\.", _basic_block),
        )
    ),
}


def class_path(module: object) -> str:
    """``package.module.Class`` of an object, the key of :data:`BACKBONES` and :data:`HEADS`."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


def name_map(table: dict[str, NameMap], module: object, part: str) -> NameMap:
    """The map of ``module``'s class, or an error naming the classes that have one."""
    key = class_path(module)
    if key not in table:
        raise ValueError(
            f"{part} {key} has no name map for released weights (aidpose.weights.names.{part.upper()}S has "
            f"{sorted(table)}): add one to import weights into it"
        )
    return table[key]
