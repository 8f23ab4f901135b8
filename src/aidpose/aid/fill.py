"""Filling the dropped pixels of an image: a constant, the dataset mean, or uniform noise."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from aidpose.aid.masks import DropMask

Fill = float | Sequence[float] | Literal["mean", "random"]

# ImageNet mean in [0, 1] units, RGB order: aidpose's crops (TopDownDataset) and albumentations' images
# are RGB. For BGR images pass the values reversed as an explicit per-channel fill.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)

_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


def check_fill(fill: Fill, owner: str) -> float | tuple[float, ...] | str:
    """Validate a ``fill`` option and return it in canonical form (float, tuple of floats or keyword)."""
    if isinstance(fill, str):
        if fill not in ("mean", "random"):
            raise ValueError(
                f"{owner}: fill={fill!r} is not supported; use a number, per-channel numbers, "
                "'mean' (ImageNet mean) or 'random' (uniform noise)"
            )
        return fill
    if isinstance(fill, (int, float, np.number)):
        return float(fill)
    values = tuple(float(v) for v in fill)
    if not values:
        raise ValueError(f"{owner}: fill is an empty sequence; give one value or one per channel")
    return values


def fill_values(fill: float | tuple[float, ...] | str, dtype: np.dtype, channels: int) -> np.ndarray:
    """Per-channel constant fill (C,) in ``dtype`` and its value range (uint8: 0–255, float32: 0–1)."""
    if fill == "mean":
        if channels not in (1, 3):
            raise ValueError(
                f"fill='mean' needs a 1- or 3-channel image, got {channels} channels; pass fill values"
            )
        scale = 255.0 if dtype == np.uint8 else 1.0
        values = np.array(IMAGENET_MEAN_RGB if channels == 3 else [np.mean(IMAGENET_MEAN_RGB)]) * scale
    else:
        values = np.atleast_1d(np.asarray(fill, dtype=np.float64))
        if values.size not in (1, channels):
            raise ValueError(
                f"fill has {values.size} values for a {channels}-channel image; give 1 or {channels}"
            )
        values = np.broadcast_to(values, (channels,))
    if dtype == np.uint8:
        values = np.clip(np.rint(values), 0, 255)
    return values.astype(dtype)


@functools.lru_cache(maxsize=8)
def constant_image(fill: float | tuple[float, ...] | str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A read-only image of ``shape`` (H×W or H×W×C) holding the constant ``fill``, cached.

    Pipelines fill images of one size, so the source of every masked copy is built once.
    """
    values = fill_values(fill, np.dtype(dtype), 1 if len(shape) == 2 else shape[2])
    image = np.repeat(np.repeat(values[None, None], shape[1], axis=1), shape[0], axis=0).reshape(shape)
    image.setflags(write=False)
    return image


def fill_masked(
    image: np.ndarray, drop: DropMask, fill: float | tuple[float, ...] | str, rng: np.random.Generator
) -> np.ndarray:
    """Fill the dropped pixels; in place when ``image`` is writable and C-contiguous (else on a copy).

    ``fill='random'`` draws uniform noise from ``rng`` (uint8: integers 0–255, float32: [0, 1)) for the
    mask's window; every other fill consumes no random numbers. Returns the filled image.
    """
    if image.dtype not in _DTYPES:
        raise ValueError(
            f"AID droppers take uint8 or float32 images, got {image.dtype}; convert the image first"
        )
    if image.ndim not in (2, 3) or image.shape[:2] != (drop.height, drop.width):
        raise ValueError(
            f"image of shape {image.shape} does not match a {drop.height}×{drop.width} drop mask "
            "(need H×W or H×W×C)"
        )
    if drop.local.size == 0:
        return image
    if not (image.flags.c_contiguous and image.flags.writeable):
        image = image.copy()
    h, w = drop.local.shape
    window = image[drop.top : drop.top + h, drop.left : drop.left + w]
    if fill == "random":
        if image.dtype == np.uint8:
            source = rng.integers(0, 256, size=window.shape, dtype=np.uint8)
        else:
            source = rng.random(window.shape, dtype=np.float32)
    else:
        source = constant_image(fill, image.shape, image.dtype.str)[:h, :w]
    _copy_where(window, source, drop.local.view(np.uint8))
    return image


def _copy_where(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """dst[mask] = src[mask] in place, with OpenCV (much faster than numpy's boolean indexing here).

    ``dst`` and ``src`` may be windows of C-contiguous images (rows strided, pixels contiguous).
    """
    channels = 1 if dst.ndim == 2 else dst.shape[2]
    if dst.dtype == np.uint8 or channels == 1:
        cv2.copyTo(src, mask, dst)
        return
    # OpenCV's masked copy of multi-channel float32 is slow: copy the (h, w·C) view with a per-channel mask.
    # Merging a window's contiguous (w, C) axes is always a view, so the copy lands in the image.
    height, width = mask.shape
    flat_mask = cv2.merge([mask] * channels).reshape(height, width * channels)
    cv2.copyTo(src.reshape(height, width * channels), flat_mask, dst.reshape(height, width * channels))
