"""Rasterisation: parts → a label canvas (cv2, sub-pixel), then materials → image pixels and owner map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from aidpose.data.synthpose.appearance import Materials, texture_field
from aidpose.data.synthpose.body import Part

SHIFT = 4  # cv2 fractional bits: coordinates in 1/16 px
_ONE = 1 << SHIFT


def _fixed(values) -> tuple[int, ...]:
    return tuple(int(v) for v in np.round(np.asarray(values, np.float64) * _ONE))


def draw_part(canvas: np.ndarray, part: Part, origin: tuple[int, int]) -> None:
    """Fill ``part`` with its label into ``canvas`` whose pixel (0, 0) is image pixel ``origin`` (x, y)."""
    ox, oy = origin
    d = part.data
    label = int(part.label)
    if part.kind == "capsule":
        p1 = np.array([d[0] - ox, d[1] - oy])
        p2 = np.array([d[2] - ox, d[3] - oy])
        r1, r2 = float(d[4]), float(d[5])
        cv2.circle(canvas, _fixed(p1), round(r1 * _ONE), label, -1, cv2.LINE_8, SHIFT)
        cv2.circle(canvas, _fixed(p2), round(r2 * _ONE), label, -1, cv2.LINE_8, SHIFT)
        axis = p2 - p1
        length = float(np.hypot(*axis))
        if length > 1e-6:
            n = np.array([-axis[1], axis[0]]) / length
            quad = np.stack([p1 + n * r1, p2 + n * r2, p2 - n * r2, p1 - n * r1])
            cv2.fillConvexPoly(canvas, np.round(quad * _ONE).astype(np.int32), label, cv2.LINE_8, SHIFT)
    elif part.kind == "polygon":
        pts = (np.asarray(d, np.float64) - [ox, oy]).astype(np.float32)
        hull = cv2.convexHull(pts)[:, 0, :]
        cv2.fillConvexPoly(canvas, np.round(hull * _ONE).astype(np.int32), label, cv2.LINE_8, SHIFT)
    elif part.kind == "circle":
        cv2.circle(
            canvas, _fixed((d[0] - ox, d[1] - oy)), round(float(d[2]) * _ONE), label, -1, cv2.LINE_8, SHIFT
        )
    elif part.kind == "ellipse":
        axes = _fixed((d[2], d[3]))
        cv2.ellipse(
            canvas, _fixed((d[0] - ox, d[1] - oy)), axes, float(d[4]), 0, 360, label, -1, cv2.LINE_8, SHIFT
        )
    else:
        raise ValueError(f"unknown part kind {part.kind!r}")


def parts_extent(parts: Sequence[Part]) -> tuple[float, float, float, float]:
    """Bounding box ``(x0, y0, x1, y1)`` in image px of everything the parts can fill."""
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for part in parts:
        d = np.asarray(part.data, np.float64)
        if part.kind == "capsule":
            pts, pad = d[:4].reshape(2, 2), max(d[4], d[5])
        elif part.kind == "polygon":
            pts, pad = d, 0.0
        elif part.kind == "circle":
            pts, pad = d[None, :2], d[2]
        else:
            pts, pad = d[None, :2], max(d[2], d[3])
        lo = np.minimum(lo, pts.min(0) - pad)
        hi = np.maximum(hi, pts.max(0) + pad)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass(frozen=True)
class Silhouette:
    """Where an object drew: a boolean mask of its crop; mask pixel (0, 0) is image pixel ``origin``."""

    mask: np.ndarray
    origin: tuple[int, int]

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask pasted into an image-sized boolean array."""
        out = np.zeros(shape, bool)
        x0, y0 = self.origin
        h, w = self.mask.shape
        out[y0 : y0 + h, x0 : x0 + w] = self.mask
        return out


def rasterise(
    parts: Sequence[Part], image_shape: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Label canvas of the parts, cropped to their extent inside the image (``None`` if outside it)."""
    height, width = image_shape
    x0, y0, x1, y1 = parts_extent(parts)
    cx0, cy0 = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
    cx1, cy1 = min(int(np.ceil(x1)) + 2, width), min(int(np.ceil(y1)) + 2, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    canvas = np.zeros((cy1 - cy0, cx1 - cx0), np.uint8)
    for part in parts:
        draw_part(canvas, part, (cx0, cy0))
    return canvas, (cx0, cy0)


def paint(
    image: np.ndarray,
    owner: np.ndarray | None,
    canvas: np.ndarray,
    origin: tuple[int, int],
    materials: Materials,
    owner_id: int,
    rng: np.random.Generator,
) -> Silhouette:
    """Colour the labelled pixels of ``canvas`` into ``image``, mark them ``owner_id`` in ``owner``."""
    x0, y0 = origin
    h, w = canvas.shape
    mask = canvas > 0
    fields = np.zeros((len(materials.texture_specs) + 1, h, w), np.float32)
    for i, (kind, amplitude, period) in enumerate(materials.texture_specs, start=1):
        fields[i] = texture_field(rng, kind, amplitude, period, (h, w))
    flat = np.flatnonzero(mask)
    labels = canvas.ravel()[flat]
    modulation = fields.ravel().take(materials.texture_index[labels] * (h * w) + flat)
    modulation += 1.0
    colour = materials.colours[labels]
    colour *= modulation[:, None]
    region = image[y0 : y0 + h, x0 : x0 + w]
    region[mask] = colour
    if owner is not None:
        owner[y0 : y0 + h, x0 : x0 + w][mask] = owner_id
    return Silhouette(mask, origin)
