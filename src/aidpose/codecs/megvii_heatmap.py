"""Megvii heatmaps (CPN, Chen et al. 2018; MSPN/RSN): the multi-kernel targets of RSN's intermediate supervision.

A joint is a unit impulse at its integer heatmap pixel ``trunc(keypoint / stride)`` (``stride = input /
heatmap``, not UDP's), blurred by OpenCV's Gaussian of a given kernel size (σ from the size, OpenCV's
``getGaussianKernel(k, 0)``; mirror border ``BORDER_REFLECT_101``) and scaled to a peak of 255. RSN supervises
every unit of every stage with its own kernel: coarse units wide (15), the decoded last unit narrow (5).

Mirrors mmpose 1.x ``mmpose/codecs/megvii_heatmap.py`` (``MegviiHeatmap.encode``/``decode``) and
``GenerateTarget(multilevel=True)`` with one encoder per kernel size (config
``td-hm_2xrsn50_8xb32-210e_coco-256x192.py``: ``kernel_sizes = [15, 11, 9, 7, 5]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from aidpose.codecs.udp_heatmap import _to_numpy, gaussian_blur_heatmaps

MEGVII_PEAK = 255.0


def megvii_stride(input_size: Sequence[int], heatmap_size: Sequence[int]) -> np.ndarray:
    """Input pixels per heatmap pixel (x, y): ``input / heatmap`` (4 at 256×192 → 64×48)."""
    return np.asarray(input_size, dtype=np.float64) / np.asarray(heatmap_size, dtype=np.float64)


def _blurred_impulse_profiles(centres: np.ndarray, size: int, kernel: np.ndarray) -> np.ndarray:
    """1-D profiles ``(K, size)`` of OpenCV's blur of an impulse at each integer ``centres[k]`` (reflect-101 border).

    Output pixel ``x`` sums ``kernel[t]`` over the taps ``t`` whose mirrored source pixel ``x + t - r`` is the
    impulse; near the border a tap folds back onto the map, as ``cv2.GaussianBlur`` does.
    """
    radius = len(kernel) // 2
    if radius >= size:
        raise ValueError(f"Megvii kernel size {len(kernel)} needs a heatmap side above {radius}, got {size}")
    source = np.abs(np.arange(size)[:, None] + np.arange(-radius, radius + 1)[None, :])  # (size, taps)
    source = np.where(source > size - 1, 2 * (size - 1) - source, source)
    hits = source[None] == np.asarray(centres)[:, None, None]  # (K, size, taps)
    return hits @ kernel


def encode_megvii_heatmaps(
    keypoints: np.ndarray,
    weights: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    kernel_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Megvii heatmaps ``(K, h, w)`` float32 (peak 255) and target weights ``(K,)`` of one instance.

    ``keypoints`` (K, 2) are in input pixels. A joint whose weight is below 0.5 gets an empty map and weight 0;
    one whose integer pixel ``trunc(keypoint / stride)`` lies outside the map too (mmpose truncates toward
    zero, so a joint up to one stride left of or above the crop still lands in column/row 0).
    """
    if kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(f"Megvii kernel_size must be odd and positive (15, 11, 9, 7, 5), got {kernel_size}")
    w, h = (int(v) for v in heatmap_size)
    centre = np.trunc(np.asarray(keypoints, dtype=np.float64) / megvii_stride(input_size, heatmap_size))
    weights = np.asarray(weights, dtype=np.float32)
    inside = (centre[:, 0] >= 0) & (centre[:, 0] < w) & (centre[:, 1] >= 0) & (centre[:, 1] < h)
    valid = (weights >= 0.5) & inside
    cx, cy = (
        np.where(valid, centre[:, 0], 0).astype(np.int64),
        np.where(valid, centre[:, 1], 0).astype(np.int64),
    )

    kernel = cv2.getGaussianKernel(kernel_size, 0).astype(np.float64)[:, 0]
    px = _blurred_impulse_profiles(cx, w, kernel)
    py = _blurred_impulse_profiles(cy, h, kernel)
    joints = np.arange(len(cx))
    scale = MEGVII_PEAK / (px[joints, cx] * py[joints, cy]) * valid
    heatmaps = np.einsum("ki,kj->kij", py * scale[:, None], px).astype(np.float32)
    return heatmaps, np.where(valid, weights, np.float32(0.0))


def encode_multilevel_megvii_heatmaps(
    keypoints: np.ndarray,
    weights: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    kernel_sizes: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """One Megvii target per kernel size: ``(L, K, h, w)`` and the weights ``(K,)`` (the same at every level: a
    joint's validity does not depend on the kernel)."""
    levels = [encode_megvii_heatmaps(keypoints, weights, input_size, heatmap_size, k) for k in kernel_sizes]
    return np.stack([hm for hm, _ in levels]), levels[0][1]


def decode_megvii_heatmaps(
    heatmaps: np.ndarray | torch.Tensor, input_size: Sequence[int], kernel_size: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Megvii heatmaps ``(N, K, h, w)`` → keypoints ``(N, K, 2)`` in input pixels and scores ``(N, K)``.

    Blur (zero border, rescaled to each map's maximum), argmax, then away from the border (``1 < x < w - 1``
    and ``1 < y < h - 1``) a quarter-pixel step towards the higher neighbour per axis plus half a pixel (the
    pixel centre); times the stride. Score = maximum / 255 + 0.5. A map whose maximum is ``<= 0`` gives
    (-1, -1) × stride. As mmpose's ``MegviiHeatmap.decode`` (kernel 5 for RSN).
    """
    hm = gaussian_blur_heatmaps(_to_numpy(heatmaps).astype(np.float32, copy=False), kernel_size)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(axis=-1)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    x, y = idx % w, idx // w
    coords = np.stack([x, y], axis=-1).astype(np.float64)
    coords[maxvals <= 0] = -1.0

    interior = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1) & (maxvals > 0)
    xi, yi = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    n_idx, k_idx = np.arange(n)[:, None], np.arange(k)[None, :]
    diff = np.stack(
        [
            hm[n_idx, k_idx, yi, xi + 1] - hm[n_idx, k_idx, yi, xi - 1],
            hm[n_idx, k_idx, yi + 1, xi] - hm[n_idx, k_idx, yi - 1, xi],
        ],
        axis=-1,
    )
    coords += np.where(interior[..., None], np.sign(diff) * 0.25 + 0.5, 0.0)
    keypoints = coords * megvii_stride(input_size, (w, h))
    return keypoints.astype(np.float32), (maxvals / MEGVII_PEAK + 0.5).astype(np.float32)
