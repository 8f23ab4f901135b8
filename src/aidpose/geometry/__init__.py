"""Geometry of both paradigms: UDP affine warps (``affine``), training augmentation (``augment``: top-down person
boxes, bottom-up whole images) and inference warps (``inference``: crops of boxes, whole images at test scales)."""

from aidpose.geometry.affine import (
    apply_affine,
    box_to_center_scale,
    clip_boxes,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)
from aidpose.geometry.augment import AugmentationParams, BottomUpAugmentation, TopDownAugmentation
from aidpose.geometry.inference import crop_boxes, inference_warps, scale_inputs

__all__ = [
    "AugmentationParams",
    "BottomUpAugmentation",
    "TopDownAugmentation",
    "apply_affine",
    "box_to_center_scale",
    "clip_boxes",
    "crop_boxes",
    "inference_warps",
    "invert_affine",
    "scale_inputs",
    "udp_warp_matrix",
    "warp_to_rgb",
]
