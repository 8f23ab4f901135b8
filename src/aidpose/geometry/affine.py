"""Unbiased (UDP) affine geometry of the top-down crop: boxes, warp matrices, point transforms.

Coordinates are continuous pixel coordinates with pixel (row i, col j) centred at (x=j, y=i), and sizes
are (width, height). Under UDP (Huang et al., CVPR 2020) a crop of ``output_size = (w, h)`` pixels spans
``w - 1`` by ``h - 1`` pixel units between its first and last pixel centres, so the box ``scale`` (in
image pixels) is mapped onto ``(w - 1, h - 1)`` and the box centre onto ``((w - 1) / 2, (h - 1) / 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow ``scale`` (..., 2) = (w, h) along one axis so that ``w / h == aspect_ratio``."""
    scale = np.asarray(scale, dtype=np.float64)
    w, h = scale[..., 0], scale[..., 1]
    wide = w > aspect_ratio * h
    return np.stack([np.where(wide, w, h * aspect_ratio), np.where(wide, w / aspect_ratio, h)], axis=-1)


def box_to_center_scale(
    bbox_xywh: np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Box(es) ``(..., 4)`` as (x, y, w, h) → centre ``(..., 2)`` and scale ``(..., 2)`` in pixels.

    The scale is the box grown to the input aspect ratio (``width / height``) and multiplied by
    ``padding``.
    """
    box = np.asarray(bbox_xywh, dtype=np.float64)
    center = box[..., :2] + 0.5 * box[..., 2:4]
    return center, fix_aspect_ratio(box[..., 2:4], aspect_ratio) * padding


def udp_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation_deg: float,
    output_size: Sequence[int],
    flip: bool = False,
) -> np.ndarray:
    """2×3 float32 matrix mapping image pixels to crop pixels (UDP).

    The box of size ``scale`` around ``center``, rotated by ``rotation_deg``, fills the crop: ``center``
    maps to ``((w - 1) / 2, (h - 1) / 2)`` and ``scale`` to ``(w - 1, h - 1)`` crop pixels. With ``flip``
    the crop is mirrored (``x' = (w - 1) - x``), so a flipped sample needs one warp of the original image.
    """
    w, h = output_size
    sx = (w - 1) / float(scale[0])
    sy = (h - 1) / float(scale[1])
    cos, sin = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    cx, cy = float(center[0]), float(center[1])
    # crop = S·R·(p - c) + (out - 1) / 2, in Python floats (the same float64 arithmetic as numpy's, with less
    # overhead for a 2×3 matrix built per sample)
    a00, a01, a10, a11 = sx * cos, -sx * sin, sy * sin, sy * cos
    t0 = (w - 1) * 0.5 - (a00 * cx + a01 * cy)
    t1 = (h - 1) * 0.5 - (a10 * cx + a11 * cy)
    if flip:
        a00, a01, t0 = -a00, -a01, (w - 1) - t0
    return np.array([[a00, a01, t0], [a10, a11, t1]], dtype=np.float32)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of 2×3 affine matrices ``(..., 2, 3)``, in float64."""
    m = np.asarray(matrix, dtype=np.float64)
    a_inv = np.linalg.inv(m[..., :2])
    t_inv = -np.einsum("...ij,...j->...i", a_inv, m[..., 2])
    return np.concatenate([a_inv, t_inv[..., None]], axis=-1)


def item_inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """The float32 inverse of one 2×3 matrix, as an item carries it: OpenCV's closed-form inverse in float64,
    cast. ~6× cheaper per sample than :func:`invert_affine`; its float64 values may differ in the last bits,
    the float32 ones were equal on 200,000 random UDP warps (tests/test_affine.py checks 2,000)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64)).astype(np.float32)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply 2×3 matrix ``(2, 3)`` or ``(..., 2, 3)`` to points ``(..., P, 2)``."""
    m = np.asarray(matrix)
    return np.asarray(points) @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def clip_boxes(boxes_xywh: np.ndarray, image_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip (x, y, w, h) boxes ``(N, 4)`` to their images ``(N, 2)`` = (width, height).

    Corners are clipped to the first/last pixel centre ``[0, width - 1] × [0, height - 1]`` (as mmpose
    does). Returns the clipped boxes (float32) and a mask of boxes with positive width and height.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    limits = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2) - 1.0
    x1y1 = np.clip(boxes[:, :2], 0.0, limits)
    x2y2 = np.clip(boxes[:, :2] + boxes[:, 2:], 0.0, limits)
    wh = x2y2 - x1y1
    valid = (wh > 0).all(axis=1)
    return np.concatenate([x1y1, wh], axis=1).astype(np.float32), valid


def warp_to_rgb(image_bgr: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Warp a BGR image with a 2×3 matrix (bilinear, black border) → contiguous HWC RGB uint8 crop.

    The BGR image is warped as it is and only the crop is converted to RGB: converting the whole image to RGBA
    first, for cv2's faster 4-channel warp, costs more than that warp saves (the pixels are the same).
    """
    crop = cv2.warpAffine(
        image_bgr, matrix, output_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crop)  # in place: no second crop-sized buffer


def hwc_to_chw(image: np.ndarray) -> np.ndarray:
    """A new C-contiguous (C, H, W) copy of an (H, W, C) image, one plane per channel.

    OpenCV's channel copy into the planes is ~1.3× faster than numpy's copy of the transposed view (uint8 crop).
    """
    planes = np.empty((image.shape[2], *image.shape[:2]), dtype=image.dtype)
    pairs = [index for channel in range(len(planes)) for index in (channel, channel)]
    cv2.mixChannels([image], list(planes), pairs)
    return planes
