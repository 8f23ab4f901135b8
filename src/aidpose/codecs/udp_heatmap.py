"""UDP Gaussian heatmaps (Huang et al., CVPR 2020): encoding, DARK-UDP decoding and flip-back.

Heatmap pixel ``(x, y)`` corresponds to input pixel ``(x, y) · stride`` with
``stride = (input_size - 1) / (heatmap_size - 1)`` per axis: the first and last pixel centres of the
input and the heatmap coincide. Everything is vectorised over instances and joints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from aidpose.codecs.base import KeypointCodec, Prediction
from aidpose.geometry.affine import apply_affine, invert_affine


def udp_stride(input_size: Sequence[int], heatmap_size: Sequence[int]) -> np.ndarray:
    """Input pixels per heatmap pixel (x, y) under UDP: ``(input - 1) / (heatmap - 1)``, float64 (computed in
    Python floats, the same division with one numpy call: the training targets ask for it per sample)."""
    (iw, ih), (w, h) = input_size, heatmap_size
    return np.array([(iw - 1) / (w - 1), (ih - 1) / (h - 1)], dtype=np.float64)


def encode_udp_heatmaps(
    keypoints: np.ndarray,
    weights: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmaps ``(K, h, w)`` float32 and target weights ``(K,)`` float32 of one instance.

    ``keypoints`` (K, 2) are in input pixels. Each joint gets an unnormalised Gaussian (peak 1) centred at
    its exact sub-pixel heatmap position, restricted (as in mmpose's UDP codec) to the integer window
    ``[μ - 3σ, μ + 3σ]`` around ``μ = trunc(p + 0.5)``. A joint's weight (and heatmap) is zeroed when its
    weight is below 0.5 or when the window lies outside the heatmap by mmpose's test: window start
    ``>= size`` or window end (exclusive) ``< 0`` on either axis.
    """
    w, h = heatmap_size
    mu = np.asarray(keypoints, dtype=np.float64) / udp_stride(input_size, heatmap_size)
    radius = 3.0 * sigma
    centre = np.trunc(mu + 0.5)
    lo = np.trunc(centre - radius)[:, :, None]  # first pixel of the window, (K, 2, 1)
    hi = np.trunc(centre + radius + 1)[:, :, None]  # one past its last pixel
    weights = np.asarray(weights, dtype=np.float32)
    valid = (weights >= 0.5) & (lo[:, :, 0] < (w, h)).all(axis=1) & (hi[:, :, 0] >= 0).all(axis=1)

    # separable Gaussian: 1-D profiles along x and y on one grid, then their outer product per joint
    grid = np.arange(max(w, h), dtype=np.float64)
    d = grid - mu[:, :, None]
    profiles = (np.exp(d * d * (-0.5 / sigma**2)) * ((grid >= lo) & (grid < hi))).astype(np.float32)
    profiles[:, 1] *= valid[:, None]
    heatmaps = np.einsum("ki,kj->kij", profiles[:, 1, :h], profiles[:, 0, :w])
    return heatmaps, np.where(valid, weights, np.float32(0.0))


def gaussian_blur_heatmaps(heatmaps: np.ndarray, kernel_size: int) -> np.ndarray:
    """DARK modulation: blur ``(..., h, w)`` maps (zero border) and rescale each to its original maximum.

    All maps are blurred in one cv2 call: they are stacked vertically, separated by zero rows at least
    half a kernel high, which is the same as blurring each map with a zero border.
    """
    if kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(f"blur_kernel_size must be odd (11 for sigma=2, 17 for sigma=3), got {kernel_size}")
    *batch, h, w = heatmaps.shape
    gap = kernel_size // 2
    stacked = np.zeros((int(np.prod(batch)), h + gap, w), dtype=np.float32)
    stacked[:, :h] = heatmaps.reshape(-1, h, w)
    blurred = cv2.GaussianBlur(
        stacked.reshape(-1, w), (kernel_size, kernel_size), 0, borderType=cv2.BORDER_CONSTANT
    )
    blurred = blurred.reshape(stacked.shape)[:, :h].reshape(heatmaps.shape)
    peak = heatmaps.max(axis=(-2, -1), keepdims=True).astype(np.float32)
    blurred_peak = blurred.max(axis=(-2, -1), keepdims=True)
    ratio = np.divide(peak, blurred_peak, out=np.ones_like(peak), where=blurred_peak != 0)
    return blurred * ratio


def _to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().float().cpu().numpy()
    return np.asarray(array)


def decode_udp_heatmaps(
    heatmaps: np.ndarray | torch.Tensor, blur_kernel_size: int = 11
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(N, K, h, w)`` → coordinates ``(N, K, 2)`` in heatmap pixels and maxima ``(N, K)``.

    Argmax, then one Newton step on the log of the DARK-blurred heatmap (values clipped to
    ``[1e-3, 50]``, edge-padded derivatives), as mmpose's ``refine_keypoints_dark_udp``. Joints whose
    maximum is ``<= 0`` start from (-1, -1).
    """
    hm = _to_numpy(heatmaps).astype(np.float32, copy=False)
    n, k, h, w = hm.shape
    if n * k == 0:
        return np.zeros((n, k, 2), dtype=np.float32), np.zeros((n, k), dtype=np.float32)
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(axis=-1)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    coords[maxvals <= 0] = -1.0

    blurred = gaussian_blur_heatmaps(hm, blur_kernel_size)
    coords = dark_udp_step(blurred, (np.arange(n)[:, None], np.arange(k)[None, :]), coords)
    return coords.astype(np.float32), maxvals.astype(np.float32)


def dark_udp_step(blurred: np.ndarray, index: tuple[np.ndarray, ...], coords: np.ndarray) -> np.ndarray:
    """One Newton step of DARK-UDP from integer positions ``coords`` (..., 2) on DARK-blurred maps.

    ``blurred[index]`` selects the (h, w) map of each position (``index``: integer arrays broadcasting to
    ``coords.shape[:-1]``). Works on the log of the map clipped to ``[1e-3, 50]`` with edge-replicated
    neighbours; positions whose Hessian is singular stay put. Returns float64 coordinates.
    """
    h, w = blurred.shape[-2:]
    coords = np.asarray(coords, dtype=np.float64)
    x, y = coords[..., 0].astype(np.int64), coords[..., 1].astype(np.int64)

    def at(dy: int, dx: int) -> np.ndarray:
        """log of the clipped blurred map at (x + dx, y + dy), edge-replicated outside the map."""
        values = blurred[(*index, np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1))]
        return np.log(np.clip(values.astype(np.float64), 1e-3, 50.0))

    c, xp, xm, yp, ym = at(0, 0), at(0, 1), at(0, -1), at(1, 0), at(-1, 0)
    dx = 0.5 * (xp - xm)
    dy = 0.5 * (yp - ym)
    dxx = xp - 2 * c + xm
    dyy = yp - 2 * c + ym
    dxy = 0.5 * (at(1, 1) - xp - yp + 2 * c - xm - ym + at(-1, -1))
    eps = np.finfo(np.float32).eps
    a, d = dxx + eps, dyy + eps
    det = a * d - dxy * dxy
    safe = det != 0
    det = np.where(safe, det, 1.0)
    offset = np.stack([(d * dx - dxy * dy) / det, (a * dy - dxy * dx) / det], axis=-1)
    return coords - np.where(safe[..., None], offset, 0.0)


def refine_dark_udp(heatmaps: np.ndarray, coords: np.ndarray, blur_kernel_size: int = 3) -> np.ndarray:
    """DARK-UDP refinement of integer positions ``coords`` (P, K, 2) on one image's heatmaps (K, h, w).

    Bottom-up counterpart of ``decode_udp_heatmaps``: every person's joint ``k`` is refined on map ``k``.
    Returns float32 (P, K, 2) heatmap coordinates.
    """
    blurred = gaussian_blur_heatmaps(np.asarray(heatmaps, dtype=np.float32), blur_kernel_size)
    index = (np.arange(heatmaps.shape[0])[None, :],)
    return dark_udp_step(blurred, index, coords).astype(np.float32)


def heatmap_to_input(
    coords: np.ndarray, input_size: Sequence[int], heatmap_size: Sequence[int]
) -> np.ndarray:
    """Heatmap pixel coordinates ``(..., 2)`` → input (crop) pixel coordinates (UDP)."""
    return np.asarray(coords) * udp_stride(input_size, heatmap_size)


def heatmap_to_image_matrix(
    image_to_input: np.ndarray, input_size: Sequence[int], heatmap_size: Sequence[int]
) -> np.ndarray:
    """2×3 matrix from heatmap pixels to image pixels: heatmap → input (UDP stride) → image."""
    inv = invert_affine(image_to_input)
    stride = udp_stride(input_size, heatmap_size)
    return np.concatenate([inv[:, :2] * stride[None, :], inv[:, 2:]], axis=1)


def decode_to_image(
    heatmaps: np.ndarray | torch.Tensor,
    inv_affine: np.ndarray,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    blur_kernel_size: int = 11,
) -> np.ndarray:
    """Heatmaps ``(N, K, h, w)`` and crop→image matrices ``(N, 2, 3)`` → ``(N, K, 3)`` [x, y, score]."""
    coords, maxvals = decode_udp_heatmaps(heatmaps, blur_kernel_size)
    return keypoints_in_image(heatmap_to_input(coords, input_size, heatmap_size), maxvals, inv_affine)


def keypoints_in_image(input_xy: np.ndarray, scores: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """Keypoints ``(N, K, 2)`` in input (crop) pixels, their scores ``(N, K)`` and the crop → image matrices
    ``(N, 2, 3)`` → ``(N, K, 3)`` float32 [x, y, score] in image pixels (the last step of every top-down decode)."""
    image_xy = apply_affine(input_xy, np.asarray(to_image))
    return np.concatenate([image_xy, scores[..., None]], axis=-1).astype(np.float32)


def flip_back_heatmaps(
    heatmaps: np.ndarray | torch.Tensor, flip_index: Sequence[int] | np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Heatmaps ``(N, K, h, w)`` of a mirrored crop → heatmaps of the original crop.

    Mirrors the width axis and swaps left/right channels (``out[:, k] = in[:, flip_index[k]]``). Under
    UDP the mirror ``x → (w - 1) - x`` of the input is exactly the reversal of the heatmap columns, so
    there is no one-pixel shift. Returns the same type as ``heatmaps``.
    """
    if isinstance(heatmaps, torch.Tensor):
        index = torch.as_tensor(flip_index, device=heatmaps.device, dtype=torch.long)
        return heatmaps.flip(-1).index_select(-3, index)
    return np.take(np.asarray(heatmaps)[..., ::-1], np.asarray(flip_index), axis=-3)


def checked_size(name: str, size: Sequence[int]) -> tuple[int, int]:
    """``size`` as an int (width, height) of at least 2 px each, or an error naming ``paradigm.codec.<name>``."""
    if len(size) != 2 or min(size) < 2:
        raise ValueError(f"codec {name} is (width, height) of at least 2 px each, got {list(size)}")
    return int(size[0]), int(size[1])


def check_heatmap_sizes(
    output_sizes: Sequence[Sequence[int]],
    count: int,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    network: str,
) -> None:
    """A clear error unless the network's ``count`` outputs ``[(width, height), ...]`` are all ``heatmap_size``
    (the check of every top-down codec whose outputs share one heatmap size)."""
    measured = [[int(v) for v in size] for size in output_sizes]
    if measured == [list(heatmap_size)] * count:
        return
    if len(measured) != count:
        raise ValueError(
            f"the codec decodes {count} output(s) of {list(heatmap_size)} heatmaps, {network} gives "
            f"{len(measured)}: {measured} (width, height)"
        )
    shown = measured[0] if len(set(map(tuple, measured))) == 1 else measured
    raise ValueError(
        f"paradigm.codec.heatmap_size={list(heatmap_size)} does not fit the network: {network} "
        f"maps paradigm.input_size={list(input_size)} to {shown} heatmaps (width, height). "
        f"Set paradigm.codec.heatmap_size={shown}, or change paradigm.input_size or the backbone."
    )


def crop_person(keypoints: np.ndarray, visible: np.ndarray, codec: str) -> tuple[np.ndarray, np.ndarray]:
    """The one person ``(1, K, 2)`` of a top-down crop as keypoints ``(K, 2)`` and weights ``(K,)`` (1 where
    labelled), or an error naming ``codec``."""
    if len(keypoints) != 1:
        raise ValueError(f"{codec} encodes the one person of a crop, got {len(keypoints)} people")
    return keypoints[0], (np.asarray(visible[0]) > 0).astype(np.float32)


def scored_people(keypoints: np.ndarray) -> Prediction:
    """People ``(N, K, 3)`` in image pixels, each scored by the mean of its keypoint scores (top-down crops)."""
    return Prediction(keypoints, keypoints[..., 2].mean(axis=1))


@dataclass(frozen=True)
class CropMapCodec(KeypointCodec):
    """The part every top-down heatmap codec shares: maps of ``heatmap_size`` for a crop of ``input_size``, one
    stack per network output (``num_outputs``; the sizes are checked when the model is built).

    Args:
        input_size: (width, height) of the network input (the crop).
        heatmap_size: (width, height) of the maps; must be the network's output size for ``input_size``.
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", checked_size("input_size", self.input_size))
        object.__setattr__(self, "heatmap_size", checked_size("heatmap_size", self.heatmap_size))

    @property
    def num_outputs(self) -> int:
        """How many outputs of ``heatmap_size`` the network has: one, or one per entry of ``output_channels``
        when it is a list (multi-stage heads)."""
        channels = self.output_channels(1)
        return len(channels) if isinstance(channels, list) else 1

    def check_output_size(self, output_sizes: Sequence[Sequence[int]], network: str) -> None:
        """Raise a clear error unless the network's outputs ``[(width, height)]`` are ``num_outputs`` times
        ``heatmap_size``."""
        check_heatmap_sizes(output_sizes, self.num_outputs, self.input_size, self.heatmap_size, network)


@dataclass(frozen=True)
class UDPHeatmapCodec(CropMapCodec):
    """Top-down UDP heatmaps: one Gaussian heatmap per keypoint of one person's crop (the
    :class:`~aidpose.codecs.base.KeypointCodec` contract), built once from ``paradigm.codec`` and shared by the
    dataset (:meth:`encode`), the LightningModule and inference (:meth:`decode`, :meth:`flip_back`).

    Args:
        input_size: (width, height) of the network input (the crop).
        heatmap_size: (width, height) of the heatmaps; must be the network's output size for
            ``input_size`` (:meth:`check_output_size`, called when the model is built).
        sigma: Gaussian sigma of the targets in heatmap pixels.
        blur_kernel: odd size of the DARK-UDP blur before decoding (11 for sigma=2, 17 for sigma=3).
        flip_test: decode the mean of the crop's and its mirror's heatmaps (``test.flip``).
    """

    sigma: float
    blur_kernel: int = 11
    flip_test: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sigma > 0:
            raise ValueError(f"codec sigma must be > 0, got {self.sigma}")
        if int(self.blur_kernel) < 1 or int(self.blur_kernel) % 2 != 1:
            raise ValueError(
                f"codec blur_kernel must be odd (11 for sigma=2, 17 for sigma=3), got {self.blur_kernel}"
            )
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "blur_kernel", int(self.blur_kernel))
        object.__setattr__(self, "flip_test", bool(self.flip_test))

    def output_channels(self, num_keypoints: int) -> int:
        """One heatmap per keypoint."""
        return num_keypoints

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """``heatmaps`` ``(K, h, w)`` and ``keypoint_weights`` ``(K,)`` of the one person ``(1, K, 2)`` of a
        crop (keypoints in input pixels; a labelled keypoint weighs 1, see :func:`encode_udp_heatmaps`)."""
        person, weights = crop_person(keypoints, visible, "UDPHeatmapCodec")
        heatmaps, weights = encode_udp_heatmaps(
            person, weights, self.input_size, self.heatmap_size, self.sigma
        )
        return {"heatmaps": heatmaps, "keypoint_weights": weights}

    def flip_back(
        self, outputs: np.ndarray | torch.Tensor, flip_index: Sequence[int] | np.ndarray | torch.Tensor
    ) -> np.ndarray | torch.Tensor:
        """Heatmaps of mirrored crops → heatmaps of the original crops (see :func:`flip_back_heatmaps`)."""
        return flip_back_heatmaps(outputs, flip_index)

    def decode(self, outputs: np.ndarray | torch.Tensor, to_image: np.ndarray) -> Prediction:
        """Heatmaps ``(N, K, h, w)`` of N crops and their crop → image matrices ``(N, 2, 3)`` → the N people:
        keypoints ``(N, K, 3)`` [x, y, score] in image pixels, scored by their mean keypoint score."""
        return scored_people(
            decode_to_image(
                outputs, np.asarray(to_image), self.input_size, self.heatmap_size, self.blur_kernel
            )
        )
