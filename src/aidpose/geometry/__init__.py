"""Geometry of the top-down sample pipeline: UDP affine crops and the augmentation parameters that shape them."""

from aidpose.geometry.affine import (
    apply_affine,
    box_to_center_scale,
    clip_boxes,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)
from aidpose.geometry.augment import AugmentationParams, TopDownAugmentation

__all__ = [
    "AugmentationParams",
    "TopDownAugmentation",
    "apply_affine",
    "box_to_center_scale",
    "clip_boxes",
    "invert_affine",
    "udp_warp_matrix",
    "warp_to_rgb",
]
