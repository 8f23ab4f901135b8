"""Inference warps of a whole image: top-down person crops of given boxes, bottom-up inputs at the test scales.

The same geometry as the validation pipelines: box → padded centre/scale → UDP warp, no rotation (top-down, as
``TopDownDataset`` with ``train=False``); the image centred, short side to the input size, sides padded to
multiples of 32 (bottom-up, as ``BottomUpValDataset``). Images are BGR in, uint8 RGB CHW out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aidpose.geometry.affine import box_to_center_scale, invert_affine, udp_warp_matrix, warp_to_rgb


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


def inference_warps(
    image_size: Sequence[int], input_size: int, scales: Sequence[float], size_divisor: int = 32
) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Test-time warps of a whole image: one ``(matrix, (w, h))`` per scale, all covering the same region.

    At scale 1 the image's short side fills ``input_size`` px and the long side is padded up to a multiple
    of ``size_divisor``; at scale ``s`` each side is ``s`` times that, rounded to a multiple of
    ``size_divisor``. Every scale maps the same image region (centred on the image) onto its input with UDP
    corners, so maps of different scales align exactly after a corner-aligned resize.
    """
    iw, ih = image_size
    f = (input_size - 1) / (min(iw, ih) - 1)  # input px per image px at scale 1

    def rounded(v: float) -> int:
        return max(size_divisor, math.ceil(v / size_divisor) * size_divisor)

    base = np.array([rounded((iw - 1) * f + 1), rounded((ih - 1) * f + 1)])
    region = (base - 1) / f
    center = (np.array([iw, ih], dtype=np.float64) - 1) / 2
    warps = []
    for s in scales:
        w, h = (max(size_divisor, round(float(b) * s / size_divisor) * size_divisor) for b in base)
        warps.append((udp_warp_matrix(center, region, 0.0, (w, h)), (w, h)))
    return warps


def scale_inputs(
    image_bgr: np.ndarray, input_size: int, scales: Sequence[float]
) -> tuple[list[np.ndarray], np.ndarray]:
    """A BGR image warped for inference at each of ``scales`` (:func:`inference_warps`, short side
    ``input_size`` at scale 1): (3, h_s, w_s) uint8 RGB inputs and the (S, 2, 3) image → input matrices."""
    height, width = image_bgr.shape[:2]
    images, matrices = [], []
    for matrix, size in inference_warps((width, height), input_size, scales):
        images.append(np.ascontiguousarray(warp_to_rgb(image_bgr, matrix, size).transpose(2, 0, 1)))
        matrices.append(matrix)
    return images, np.stack(matrices)
