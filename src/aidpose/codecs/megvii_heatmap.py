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
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from aidpose.codecs.base import Prediction
from aidpose.codecs.udp_heatmap import (
    CropMapCodec,
    _to_numpy,
    crop_person,
    flip_back_heatmaps,
    gaussian_blur_heatmaps,
    keypoints_in_image,
    scored_people,
)

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


Outputs = list[torch.Tensor] | list[np.ndarray] | torch.Tensor | np.ndarray


@dataclass(frozen=True)
class MegviiHeatmapCodec(CropMapCodec):
    """Top-down multi-level Megvii heatmaps for a head with one output per stage and unit (RSN's ``MSPNHead``; the
    :class:`~aidpose.codecs.base.KeypointCodec` contract, ``paradigm/codec=megvii_heatmap``).

    ``encode`` gives one target per kernel size (the levels); network output ``i`` is trained on level
    ``level_indices[i]`` (the loss reads them); the flip test merges every output; ``decode`` reads the last
    output only (the last stage's stride-4 unit), as mmpose's ``MSPNHead.predict``.

    Args:
        input_size: (width, height) of the network input (the crop).
        heatmap_size: (width, height) of every output; the network's output size for ``input_size``.
        kernel_sizes: the Gaussian kernel of each target level, widest first (RSN-50: 11, 9, 7, 5).
        level_indices: per network output (stage-major, lowest resolution unit first), its target level.
        blur_kernel: odd blur kernel of decoding (``test.blur_kernel``; mmpose: the last level's kernel, 5).
        flip_test: decode the mean of the crop's and its mirror's last outputs (``test.flip``).
    """

    kernel_sizes: tuple[int, ...]
    level_indices: tuple[int, ...]
    blur_kernel: int = 5
    flip_test: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        kernels = tuple(int(k) for k in self.kernel_sizes)
        levels = tuple(int(i) for i in self.level_indices)
        if not kernels or any(k < 1 or k % 2 != 1 for k in kernels):
            raise ValueError(
                f"codec kernel_sizes must be odd and positive (15, 11, 9, 7, 5), got {list(kernels)}"
            )
        if not levels or min(levels) < 0 or max(levels) >= len(kernels):
            raise ValueError(
                f"codec level_indices {list(levels)} must name levels of kernel_sizes {list(kernels)} "
                f"(0 … {len(kernels) - 1}), one per network output"
            )
        if int(self.blur_kernel) < 1 or int(self.blur_kernel) % 2 != 1:
            raise ValueError(f"codec blur_kernel must be odd (5 for RSN), got {self.blur_kernel}")
        object.__setattr__(self, "kernel_sizes", kernels)
        object.__setattr__(self, "level_indices", levels)
        object.__setattr__(self, "blur_kernel", int(self.blur_kernel))
        object.__setattr__(self, "flip_test", bool(self.flip_test))

    def output_channels(self, num_keypoints: int) -> list[int]:
        """One heatmap per keypoint in each output (one output per entry of ``level_indices``)."""
        return [num_keypoints] * len(self.level_indices)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """``heatmaps`` ``(L, K, h, w)`` (one level per kernel size, peak 255) and ``keypoint_weights`` ``(K,)``
        of the one person ``(1, K, 2)`` of a crop (see :func:`encode_multilevel_megvii_heatmaps`)."""
        person, weights = crop_person(keypoints, visible, "MegviiHeatmapCodec")
        heatmaps, weights = encode_multilevel_megvii_heatmaps(
            person, weights, self.input_size, self.heatmap_size, self.kernel_sizes
        )
        return {"heatmaps": heatmaps, "keypoint_weights": weights}

    def flip_back(self, outputs: Outputs, flip_index: Sequence[int] | np.ndarray | torch.Tensor) -> Outputs:
        """Every output of mirrored crops → that output of the original crops (columns reversed, left/right
        swapped: mmpose's ``flip_mode="heatmap"`` without shift)."""
        if isinstance(outputs, (list, tuple)):
            return [flip_back_heatmaps(o, flip_index) for o in outputs]
        return flip_back_heatmaps(outputs, flip_index)

    def decode(self, outputs: Outputs, to_image: np.ndarray) -> Prediction:
        """The last output ``(N, K, h, w)`` (or the one array given) of N crops and their crop → image matrices
        ``(N, 2, 3)`` → the N people in image pixels (see :func:`decode_megvii_heatmaps`), scored by their mean
        keypoint score."""
        last = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
        crop_xy, scores = decode_megvii_heatmaps(last, self.input_size, self.blur_kernel)
        return scored_people(keypoints_in_image(crop_xy.astype(np.float64), scores, to_image))
