"""Bottom-up heatmap-loss masks: which pixels of each output resolution the loss trains on (HigherHRNet).

Crowd regions and people without labelled keypoints are ignored (their segmentation, :func:`ignore_region`),
and so is the black border the warp adds outside the image (:func:`inside_image_mask`); :func:`loss_masks`
puts both onto every heatmap grid of a warped sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from aidpose.codecs.udp_heatmap import udp_stride
from aidpose.data.coco import is_labelled_person
from aidpose.geometry.affine import invert_affine


def ignore_region(annotations: Sequence[dict[str, Any]], height: int, width: int) -> np.ndarray | None:
    """uint8 (H, W) map of the pixels the heatmap loss ignores, or None when there are none.

    As HigherHRNet for COCO: the segmentation of crowd annotations (RLE or polygons) and of person
    annotations without any labelled keypoint. Annotations without a segmentation (CrowdPose,
    SynthPose) add nothing, which is what HigherHRNet does on CrowdPose (no mask).
    """
    region = None
    for ann in annotations:
        segmentation = ann.get("segmentation")
        if not segmentation:
            continue
        if is_labelled_person(ann):
            continue
        if isinstance(segmentation, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        decoded = mask_utils.decode(rle)
        region = decoded if region is None else np.maximum(region, decoded)
    return region


def inside_image_mask(
    image_size: Sequence[int], image_to_map: np.ndarray, map_size: Sequence[int]
) -> np.ndarray:
    """uint8 (h, w) map of the grid pixels whose centre falls inside the image (its half-pixel border
    included): 1 inside, 0 on the black border of the warp. Exact for an affine map and computed per row
    (the interval of x where the four image-border inequalities hold), with no warp of an image-sized array.
    """
    iw, ih = (float(v) for v in image_size)
    w, h = (int(v) for v in map_size)
    inv = invert_affine(np.asarray(image_to_map, dtype=np.float64))  # map px → image px
    ys = np.arange(h, dtype=np.float64)
    lo = np.full(h, -np.inf)
    hi = np.full(h, np.inf)
    # image coordinate c = a·x + (b·y + t) must lie in [-0.5, size - 0.5], for c = x (row 0) and y (row 1)
    for row, size in ((0, iw), (1, ih)):
        a = inv[row, 0]
        offset = inv[row, 1] * ys + inv[row, 2]
        if abs(a) < 1e-12:  # the row's image coordinate does not change along x
            outside = (offset < -0.5) | (offset > size - 0.5)
            lo[outside], hi[outside] = np.inf, -np.inf
            continue
        first, second = (-0.5 - offset) / a, (size - 0.5 - offset) / a
        lo = np.maximum(lo, np.minimum(first, second))
        hi = np.minimum(hi, np.maximum(first, second))
    xs = np.arange(w, dtype=np.float64)
    return ((xs[None, :] >= lo[:, None]) & (xs[None, :] <= hi[:, None])).view(np.uint8)


def loss_masks(
    ignore: np.ndarray | None,
    image_size: Sequence[int],
    image_to_input: np.ndarray,
    input_size: Sequence[int],
    heatmap_sizes: Sequence[Sequence[int]],
) -> list[np.ndarray]:
    """Heatmap-loss masks (h, w) uint8 per resolution: 1 = trained, 0 = ignored.

    As in HigherHRNet, pixels that fall outside the image (the black border of the warp) are ignored. With
    an ignore region, the image minus that region is warped onto each heatmap grid (bilinear, > 0.5 is kept,
    the border is 0); without one (most images), the mask is the inside-image region, computed per row
    without warping (:func:`inside_image_mask`; it differs from the warp's rounding on at most a pixel).
    uint8: the loss multiplies by the mask as float, and a quarter of the bytes to copy and batch.
    """
    masks = []
    keep = None
    if ignore is not None:
        keep = np.full((int(image_size[1]), int(image_size[0])), 255, dtype=np.uint8)
        keep[ignore > 0] = 0
    for size in heatmap_sizes:
        stride = udp_stride(input_size, size)
        to_heatmap = np.asarray(image_to_input, dtype=np.float64) / stride[:, None]
        if keep is None:
            masks.append(inside_image_mask(image_size, to_heatmap, size))
            continue
        warped = cv2.warpAffine(
            keep,
            to_heatmap.astype(np.float32),
            tuple(int(v) for v in size),
            flags=cv2.INTER_LINEAR,
            borderValue=0,
        )
        masks.append((warped > 127).view(np.uint8))
    return masks
