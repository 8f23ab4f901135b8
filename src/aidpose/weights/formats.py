"""Source formats of released pose weights: how a file names its tensors and what input its network expects.

A format says which of a file's tensors belong to the backbone and which to the head (by name prefix), and the
input convention its networks were trained with. How the tensors inside each part are named is the same for
every format (the reference implementations share their module names) and lives in :mod:`aidpose.weights.names`.

| format | written by | backbone tensors | head tensors |
|---|---|---|---|
| ``mmpose`` | mmpose 1.x | ``backbone.*`` | ``head.*`` |
| ``mmpose0`` | mmpose 0.x, the AID authors' UDP-Pose ``mmpose`` branch | ``backbone.*`` | ``keypoint_head.*`` |
| ``hrnet`` | deep-high-resolution-net (HRNet, SimpleBaseline), HigherHRNet | the rest | ``final_layer*``, ``deconv_layers*`` |
| ``backbone`` | timm, torchvision, ImageNet-pretrained backbones | every tensor (``backbone.`` dropped) | none |
| ``aidpose`` | ``aidpose.train``, ``aidpose.import_weights`` | ``net.backbone.*`` | ``net.head.*`` |
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class InputConvention:
    """The input a network was trained on: channel order and per-channel mean/std on the 0–255 scale."""

    channel_order: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_dict(self) -> dict[str, object]:
        return {"channel_order": self.channel_order, "mean": list(self.mean), "std": list(self.std)}


# torchvision's ImageNet statistics on the 0–255 scale, RGB: mmpose 1.x (data_preprocessor, bgr_to_rgb=True),
# mmpose 0.x / UDP-Pose (LoadImageFromFile to_rgb, NormalizeTensor), HRNet and HigherHRNet (COLOR_RGB, Normalize)
IMAGENET_RGB = InputConvention("RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))


@dataclass(frozen=True)
class SourceFormat:
    """One source format.

    Args:
        name: the ``--format`` value.
        written_by: the code that writes such files (for messages and the README table).
        backbone_prefix: prefix of the backbone's tensors ("": every tensor that is not the head's).
        head_prefix: prefix of the head's tensors; "": the head's tensors are unprefixed and start with one of
            ``head_roots``; None: the format holds no head.
        convention: the input its networks expect; None: stored in the file (aidpose's own).
        native: tensor names are aidpose's already (no renaming).
        optional_prefixes: prefixes dropped before the split when present (e.g. ``backbone.`` of a full
            model read as backbone only).
    """

    name: str
    written_by: str
    backbone_prefix: str
    head_prefix: str | None
    convention: InputConvention | None
    native: bool = False
    optional_prefixes: tuple[str, ...] = ()
    head_roots: tuple[str, ...] = ()

    def split(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{source name: (part, name inside the part)}`` for the names of this format's backbone ("backbone")
        and head ("head"); names of neither part are left out."""
        parts: dict[str, tuple[str, str]] = {}
        for name in names:
            inner = name
            for prefix in self.optional_prefixes:
                if inner.startswith(prefix):
                    inner = inner[len(prefix) :]
                    break
            if self.head_prefix is None:
                parts[name] = ("backbone", inner[len(self.backbone_prefix) :])
            elif self.head_prefix and inner.startswith(self.head_prefix):
                parts[name] = ("head", inner[len(self.head_prefix) :])
            elif not self.head_prefix and inner.startswith(self.head_roots):
                parts[name] = ("head", inner)
            elif inner.startswith(self.backbone_prefix):
                parts[name] = ("backbone", inner[len(self.backbone_prefix) :])
        return parts


# unprefixed tensors of a pose head in the HRNet/HigherHRNet repositories
REFERENCE_HEAD_ROOTS = ("final_layer.", "final_layers.", "deconv_layers.")

FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat("mmpose", "mmpose 1.x", "backbone.", "head.", IMAGENET_RGB),
        SourceFormat(
            "mmpose0", "mmpose 0.x and the AID authors' UDP-Pose (branch mmpose)", "backbone.", "keypoint_head.",
            IMAGENET_RGB,
        ),
        SourceFormat(
            "hrnet", "deep-high-resolution-net (HRNet, SimpleBaseline) and HigherHRNet repositories", "", "",
            IMAGENET_RGB, head_roots=REFERENCE_HEAD_ROOTS,
        ),
        SourceFormat(
            "backbone", "timm, torchvision or any backbone-only file (ImageNet-pretrained)", "", None,
            IMAGENET_RGB, optional_prefixes=("backbone.",),
        ),
        SourceFormat("aidpose", "aidpose.train, aidpose.import_weights", "net.backbone.", "net.head.", None,
                     native=True),
    )
}  # fmt: skip

# classification heads of backbone-only files: timm's HRNet and ResNet, torchvision's ResNet
CLASSIFIER_ROOTS = ("fc.", "classifier.", "incre_modules.", "downsamp_modules.")


def detect_format(names: Collection[str], has_aidpose_config: bool = False) -> SourceFormat:
    """The format of a file from its tensor names (``module.`` already removed); a clear error when none fits."""
    if has_aidpose_config or any(n.startswith("net.") for n in names):
        return FORMATS["aidpose"]
    if any(n.startswith("keypoint_head.") for n in names):
        return FORMATS["mmpose0"]
    if any(n.startswith("head.") for n in names) and any(n.startswith("backbone.") for n in names):
        return FORMATS["mmpose"]
    unprefixed_head = any(n.startswith(REFERENCE_HEAD_ROOTS) for n in names)
    classifier = any(n.startswith(CLASSIFIER_ROOTS) for n in names)
    if unprefixed_head and not classifier:
        return FORMATS["hrnet"]
    if names:
        return FORMATS["backbone"]
    raise ValueError("the file holds no tensors: nothing to import")
