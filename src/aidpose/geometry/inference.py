"""Inference warps of a whole image: top-down person crops of given boxes, bottom-up inputs at the test scales.

The same geometry as the validation pipelines: box → padded centre/scale → UDP warp, no rotation (top-down, as
``TopDownDataset`` with ``train=False``); the image centred, short side to the input size, sides padded to
multiples of the codec's ``size_divisor`` by its ``size_rule`` (bottom-up, as ``BottomUpValDataset``). Images
are BGR in, uint8 RGB CHW out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aidpose.geometry.affine import (
    box_to_center_scale,
    hwc_to_chw,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)


def crop_boxes(
    image_bgr: np.ndarray, boxes_xywh: np.ndarray, input_size: Sequence[int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """UDP crops (N, 3, H, W) uint8 RGB of the boxes and their crop → image matrices (N, 2, 3) float32."""
    size = (int(input_size[0]), int(input_size[1]))
    centers, scales = box_to_center_scale(np.asarray(boxes_xywh).reshape(-1, 4), size[0] / size[1], padding)
    crops = np.zeros((len(centers), 3, size[1], size[0]), dtype=np.uint8)
    inverse = np.zeros((len(centers), 2, 3), dtype=np.float32)
    for i, (center, scale) in enumerate(zip(centers, scales, strict=True)):
        matrix = udp_warp_matrix(center, scale, 0.0, size)
        crops[i] = warp_to_rgb(image_bgr, matrix, size).transpose(2, 0, 1)
        inverse[i] = invert_affine(matrix)
    return crops, inverse


SIZE_RULES = ("aidpose", "higherhrnet")
"""How :func:`inference_sizes` pads a whole image's test inputs (the bottom-up codec's ``size_rule``)."""


def _ceil_to(value: float, divisor: int) -> int:
    return max(divisor, math.ceil(value / divisor) * divisor)


def _round_to(value: float, divisor: int) -> int:
    return max(divisor, round(value / divisor) * divisor)


def inference_sizes(
    image_size: Sequence[int],
    input_size: int,
    scales: Sequence[float],
    size_divisor: int = 32,
    size_rule: str = "aidpose",
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The image region (w, h) every test input covers, centred on the image, and each scale's input (w, h).

    ``aidpose``: at scale 1 the image's short side fills ``input_size`` px corner to corner (UDP) and the long
    side is padded up to a multiple of ``size_divisor``; scale ``s``'s sides are ``s`` times that, rounded to
    multiples of ``size_divisor``. ``higherhrnet``: HigherHRNet's sizes (``get_multi_scale_size``), as the
    UDP-Pose code computes them (a true ceiling): at the smallest scale ``s0`` the short side is
    ``s0 · input_size`` and the long side that times the image's long/short ratio, each rounded up to a
    multiple of ``size_divisor``; scale ``s``'s sides are ``int(side · s / s0)``. Under both the region's short side is
    the image's.
    """
    if size_rule not in SIZE_RULES:
        raise ValueError(f"size_rule={size_rule!r} is not a test-size rule; choose one of {list(SIZE_RULES)}")
    iw, ih = image_size
    short = min(iw, ih) - 1  # image px from the first to the last pixel centre of the short side
    if size_rule == "aidpose":
        f = (input_size - 1) / short  # input px per image px at scale 1
        reference = np.array(
            [_ceil_to((iw - 1) * f + 1, size_divisor), _ceil_to((ih - 1) * f + 1, size_divisor)]
        )
        sizes = [
            (_round_to(reference[0] * s, size_divisor), _round_to(reference[1] * s, size_divisor))
            for s in scales
        ]
        return (reference - 1) / f, sizes
    lowest = min(scales)
    short_side = _ceil_to(lowest * input_size, size_divisor)
    long_side = _ceil_to(short_side / min(iw, ih) * max(iw, ih), size_divisor)
    reference = np.array([short_side, long_side] if iw < ih else [long_side, short_side])
    sizes = [(int(reference[0] * s / lowest), int(reference[1] * s / lowest)) for s in scales]
    return (reference - 1) * short / (short_side - 1), sizes


def inference_warps(
    image_size: Sequence[int],
    input_size: int,
    scales: Sequence[float],
    size_divisor: int = 32,
    size_rule: str = "aidpose",
) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Test-time warps of a whole image: one ``(matrix, (w, h))`` per scale, all covering the same region.

    Sizes and region as :func:`inference_sizes`. Every scale maps the region (centred on the image) onto its
    input with UDP corners, so maps of different scales align exactly after a corner-aligned resize.
    """
    region, sizes = inference_sizes(image_size, input_size, scales, size_divisor, size_rule)
    center = (np.array(image_size, dtype=np.float64) - 1) / 2
    return [(udp_warp_matrix(center, region, 0.0, size), size) for size in sizes]


def scale_inputs(
    image_bgr: np.ndarray,
    input_size: int,
    scales: Sequence[float],
    size_divisor: int = 32,
    size_rule: str = "aidpose",
) -> tuple[list[np.ndarray], np.ndarray]:
    """A BGR image warped for inference at each of ``scales`` (:func:`inference_warps`, short side
    ``input_size`` at scale 1): (3, h_s, w_s) uint8 RGB inputs and the (S, 2, 3) image → input matrices."""
    height, width = image_bgr.shape[:2]
    images, matrices = [], []
    for matrix, size in inference_warps((width, height), input_size, scales, size_divisor, size_rule):
        images.append(hwc_to_chw(warp_to_rgb(image_bgr, matrix, size)))
        matrices.append(matrix)
    return images, np.stack(matrices)
