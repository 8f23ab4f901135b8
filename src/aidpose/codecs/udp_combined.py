"""UDP's combined target (Huang et al., CVPR 2020, "UDP v1"): per joint a binary label disc and x/y offset maps.

Channels ``3k, 3k + 1, 3k + 2`` of joint ``k``: the label (1 on the disc of radius ``r = radius_factor ·
max(w, h)`` heatmap pixels around the joint's exact UDP position ``μ``, else 0) and, on that disc, the offsets
``(μ - p) / r`` from each pixel ``p`` to the joint (0 elsewhere). ``radius_factor = 0.0546875`` gives the authors'
``LOSS.KPD = 3.5`` at 64×48. Decoding takes the argmax of the blurred label map and adds the (optionally blurred)
offset found there, times ``r``: the joint's sub-pixel position with no Taylor step.

Mirrors mmpose 1.x ``UDPHeatmap(heatmap_type="combined")`` (``mmpose/codecs/udp_heatmap.py``,
``generate_offset_heatmap`` in ``mmpose/codecs/utils/offset_heatmap.py``, ``flip_heatmaps(flip_mode="udp_combined")``
in ``mmpose/models/utils/tta.py``) and the authors' code (UDP-Pose ``master``
``deep-high-resolution-net.pytorch/lib/core/inference.py`` ``get_final_preds``; branch ``mmpose``
``mmpose/core/evaluation/top_down_eval.py`` ``keypoints_from_heatmaps``). Where they differ: mmpose 1.x writes
the offsets on the whole map (only the disc is trained: the loss masks them with the label), the authors only on
the disc, as here; mmpose 1.x blurs the label maps with ``2 · blur_kernel_size + 1`` (23 by default) and not the
offsets, the authors with 15 and the offsets with 7 (``modulate_kernel=7``). Both kernels are arguments.
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
    heatmap_to_input,
    keypoints_in_image,
    scored_people,
    udp_stride,
)

_CV_MAX_CHANNELS = (
    128  # the most channels of one image OpenCV 5 accepts: blur at most this many maps per call
)


def combined_radius(heatmap_size: Sequence[int], radius_factor: float) -> float:
    """Radius of the label disc in heatmap pixels: ``radius_factor · max(w, h)`` (3.5 at 64×48)."""
    return float(radius_factor) * max(int(v) for v in heatmap_size)


def encode_udp_combined(
    keypoints: np.ndarray,
    weights: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    radius_factor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Combined targets ``(3K, h, w)`` float32 and target weights ``(K,)`` float32 of one instance.

    ``keypoints`` (K, 2) are in input pixels. A joint whose weight is below 0.5 gets empty maps and weight 0.
    A joint outside the map keeps its weight and gets the part of its disc that lies on the map (none when it
    is farther than ``r`` from the map), as mmpose and the authors do: its label is then trained towards 0.
    """
    w, h = (int(v) for v in heatmap_size)
    radius = combined_radius(heatmap_size, radius_factor)
    if not radius > 0:
        raise ValueError(f"combined target radius_factor must be > 0, got {radius_factor}")
    mu = np.asarray(keypoints, dtype=np.float64) / udp_stride(input_size, heatmap_size)
    weights = np.asarray(weights, dtype=np.float32)
    valid = weights >= 0.5
    dx = (mu[:, 0, None] - np.arange(w)) / radius  # (K, w)
    dy = (mu[:, 1, None] - np.arange(h)) / radius  # (K, h)
    disc = (dx[:, None, :] ** 2 + dy[:, :, None] ** 2 <= 1) & valid[:, None, None]  # (K, h, w)
    targets = np.zeros((len(mu), 3, h, w), dtype=np.float32)
    targets[:, 0] = disc
    targets[:, 1] = np.where(disc, dx[:, None, :], 0.0)
    targets[:, 2] = np.where(disc, dy[:, :, None], 0.0)
    return targets.reshape(-1, h, w), np.where(valid, weights, np.float32(0.0))


def blur_maps(maps: np.ndarray, kernel_size: int) -> np.ndarray:
    """``cv2.GaussianBlur`` (σ from the size, mirror border ``BORDER_REFLECT_101``) of every ``(h, w)`` map of
    ``maps`` (..., h, w), as mmpose and the authors blur the combined maps; kernel 0 returns a copy."""
    if kernel_size == 0:
        return np.array(maps, dtype=np.float32)
    if kernel_size < 0 or kernel_size % 2 != 1:
        raise ValueError(f"combined-target blur kernel must be odd (or 0: no blur), got {kernel_size}")
    h, w = maps.shape[-2:]
    stack = np.ascontiguousarray(np.asarray(maps, dtype=np.float32).reshape(-1, h, w).transpose(1, 2, 0))
    chunks = [
        cv2.GaussianBlur(
            np.ascontiguousarray(stack[..., i : i + _CV_MAX_CHANNELS]), (kernel_size, kernel_size), 0
        )
        for i in range(0, stack.shape[-1], _CV_MAX_CHANNELS)
    ]
    blurred = np.concatenate([c.reshape(h, w, -1) for c in chunks], axis=-1)
    return blurred.transpose(2, 0, 1).reshape(maps.shape)


def decode_udp_combined(
    outputs: np.ndarray | torch.Tensor,
    heatmap_size: Sequence[int],
    radius_factor: float,
    label_blur_kernel: int,
    offset_blur_kernel: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Combined outputs ``(N, 3K, h, w)`` → coordinates ``(N, K, 2)`` in heatmap pixels and scores ``(N, K)``.

    The label maps are blurred with ``label_blur_kernel`` and the offset maps with ``offset_blur_kernel`` (0: not
    blurred); each joint is the argmax ``p`` of its blurred label map plus ``r`` × the offsets at ``p``; its score
    is the blurred label's maximum. A joint whose maximum is ``<= 0`` is (-1, -1).
    """
    out = _to_numpy(outputs).astype(np.float32, copy=False)
    n, c, h, w = out.shape
    if c % 3 != 0:
        raise ValueError(f"combined-target outputs have 3 channels per keypoint, got {c} channels")
    if (w, h) != tuple(int(v) for v in heatmap_size):
        raise ValueError(
            f"combined-target outputs are {w}×{h}, the codec's heatmap_size is {list(heatmap_size)}"
        )
    k = c // 3
    maps = out.reshape(n, k, 3, h, w)
    labels = blur_maps(maps[:, :, 0], label_blur_kernel).reshape(n, k, h * w)
    offsets = blur_maps(maps[:, :, 1:], offset_blur_kernel).reshape(n, k, 2, h * w)
    idx = labels.argmax(axis=-1)
    maxvals = np.take_along_axis(labels, idx[..., None], axis=-1)[..., 0]
    at_peak = np.take_along_axis(offsets, idx[:, :, None, None], axis=-1)[..., 0]  # (N, K, 2)
    coords = np.stack([idx % w, idx // w], axis=-1) + combined_radius(heatmap_size, radius_factor) * at_peak
    coords[maxvals <= 0] = -1.0
    return coords.astype(np.float32), maxvals.astype(np.float32)


def decode_udp_combined_to_image(
    outputs: np.ndarray | torch.Tensor,
    inv_affine: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    radius_factor: float,
    label_blur_kernel: int,
    offset_blur_kernel: int,
) -> np.ndarray:
    """Combined outputs ``(N, 3K, h, w)`` and crop→image matrices ``(N, 2, 3)`` → ``(N, K, 3)`` [x, y, score]."""
    coords, scores = decode_udp_combined(
        outputs, heatmap_size, radius_factor, label_blur_kernel, offset_blur_kernel
    )
    return keypoints_in_image(heatmap_to_input(coords, input_size, heatmap_size), scores, inv_affine)


def flip_back_combined(
    outputs: np.ndarray | torch.Tensor, flip_index: Sequence[int] | np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Combined outputs ``(N, 3K, h, w)`` of a mirrored crop → outputs of the original crop.

    Reverses the width axis, swaps left/right joints (all three channels of a joint move together:
    ``out[:, k] = in[:, flip_index[k]]``) and negates the x-offsets (a mirrored offset points the other way).
    Under UDP the column reversal is the exact mirror of the input. Returns the type of ``outputs``.
    """
    n, c, h, w = outputs.shape
    sign = [1.0, -1.0, 1.0]
    if isinstance(outputs, torch.Tensor):
        index = torch.as_tensor(flip_index, device=outputs.device, dtype=torch.long)
        grouped = outputs.reshape(n, c // 3, 3, h, w).flip(-1).index_select(1, index)
        return (grouped * grouped.new_tensor(sign)[:, None, None]).reshape(n, c, h, w)
    grouped = np.take(
        np.asarray(outputs).reshape(n, c // 3, 3, h, w)[..., ::-1], np.asarray(flip_index), axis=1
    )
    return (grouped * np.asarray(sign, dtype=grouped.dtype)[:, None, None]).reshape(n, c, h, w)


@dataclass(frozen=True)
class UDPCombinedCodec(CropMapCodec):
    """Top-down UDP combined target (the paper's "UDP v1"): per keypoint of a crop a label disc and x/y offset maps
    (the :class:`~aidpose.codecs.base.KeypointCodec` contract; ``paradigm/codec=udp_combined``).

    Args:
        input_size: (width, height) of the network input (the crop).
        heatmap_size: (width, height) of the maps; the network's output size for ``input_size``.
        radius_factor: disc radius in heatmap pixels per pixel of the map's longer side (0.0546875: 3.5 px at
            64×48, the authors' ``LOSS.KPD = 3.5``).
        blur_kernel: odd size of the label maps' blur before the argmax (``test.blur_kernel``; the authors 15,
            mmpose 1.x 23; 0: none).
        offset_blur_kernel: odd size of the offset maps' blur (the authors 7, mmpose 1.x 0: none).
        flip_test: decode the mean of the crop's and its mirror's outputs (``test.flip``).
    """

    radius_factor: float = 0.0546875
    blur_kernel: int = 15
    offset_blur_kernel: int = 7
    flip_test: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.radius_factor > 0:
            raise ValueError(
                f"codec radius_factor must be > 0 (0.0546875: 3.5 px at 64×48), got {self.radius_factor}"
            )
        for name in ("blur_kernel", "offset_blur_kernel"):
            kernel = int(getattr(self, name))
            if kernel < 0 or (kernel and kernel % 2 != 1):
                raise ValueError(f"codec {name} must be odd, or 0 for no blur, got {kernel}")
            object.__setattr__(self, name, kernel)
        object.__setattr__(self, "radius_factor", float(self.radius_factor))
        object.__setattr__(self, "flip_test", bool(self.flip_test))

    def output_channels(self, num_keypoints: int) -> int:
        """Three maps per keypoint: label, x-offset, y-offset."""
        return 3 * num_keypoints

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """``heatmaps`` ``(3K, h, w)`` (label, x-, y-offset per keypoint) and ``keypoint_weights`` ``(K,)`` of the
        one person ``(1, K, 2)`` of a crop (keypoints in input pixels; see :func:`encode_udp_combined`)."""
        person, weights = crop_person(keypoints, visible, "UDPCombinedCodec")
        heatmaps, weights = encode_udp_combined(
            person, weights, self.input_size, self.heatmap_size, self.radius_factor
        )
        return {"heatmaps": heatmaps, "keypoint_weights": weights}

    def flip_back(
        self, outputs: np.ndarray | torch.Tensor, flip_index: Sequence[int] | np.ndarray | torch.Tensor
    ) -> np.ndarray | torch.Tensor:
        """Outputs of mirrored crops → outputs of the original crops, x-offsets negated (:func:`flip_back_combined`)."""
        return flip_back_combined(outputs, flip_index)

    def decode(self, outputs: np.ndarray | torch.Tensor, to_image: np.ndarray) -> Prediction:
        """Outputs ``(N, 3K, h, w)`` of N crops and their crop → image matrices ``(N, 2, 3)`` → the N people:
        keypoints ``(N, K, 3)`` [x, y, score] in image pixels, scored by their mean keypoint score."""
        keypoints = decode_udp_combined_to_image(
            outputs, np.asarray(to_image), self.input_size, self.heatmap_size, self.radius_factor,
            self.blur_kernel, self.offset_blur_kernel,
        )  # fmt: skip
        return scored_people(keypoints)
