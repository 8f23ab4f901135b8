"""Geometry (UDP affine crops) and sample augmentation of the top-down pipeline."""

from aidpose.transforms.affine import (
    apply_affine,
    box_to_center_scale,
    clip_boxes,
    invert_affine,
    udp_warp_matrix,
)
from aidpose.transforms.augment import AugmentationParams, TopDownAugmentation

__all__ = [
    "AugmentationParams",
    "TopDownAugmentation",
    "apply_affine",
    "box_to_center_scale",
    "clip_boxes",
    "invert_affine",
    "udp_warp_matrix",
]
