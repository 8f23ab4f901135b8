"""Pure functions that sample the region each AID dropper hides and rasterise it into a drop mask.

Every sampler draws only from the ``numpy.random.Generator`` it is given, so the albumentations path
(``self.random_generator``) and aidpose's fast ``drop()`` path (the sample pipeline's generator) share
one definition of each dropper. Pixel convention (UDP): pixel (row i, col j) has its centre at
(x=j, y=i); a mask is ``True`` where appearance is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DropMask:
    """The dropped pixels of an H×W image: ``local`` (h×w bool, C-contiguous) placed at (top, left).

    Pixels outside that window are kept. A window around the dropped region keeps rasterising and
    filling a small hole proportional to the hole, not to the image.
    """

    local: np.ndarray
    top: int
    left: int
    height: int
    width: int

    @classmethod
    def whole(cls, mask: np.ndarray) -> DropMask:
        """A DropMask from a full H×W bool mask."""
        return cls(np.ascontiguousarray(mask, dtype=bool), 0, 0, mask.shape[0], mask.shape[1])

    def full(self) -> np.ndarray:
        """The H×W bool mask."""
        if self.local.shape == (self.height, self.width):
            return self.local
        mask = np.zeros((self.height, self.width), dtype=bool)
        h, w = self.local.shape
        mask[self.top : self.top + h, self.left : self.left + w] = self.local
        return mask


def relative_to_pixels(fraction: float, width: int) -> int:
    """A size given as a fraction of the image width, in whole pixels: round(fraction × width), ≥ 1.

    0 stays 0 (HaS's "hide nothing" cell size).
    """
    return 0 if fraction == 0 else max(1, round(fraction * width))


# -------------------------------------------------------------------------------- keypoints


def keypoint_pixels(
    keypoints: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, inside) of the pixel under each keypoint (K×2 xy).

    The pixel under (x, y) is (floor(y + 0.5), floor(x + 0.5)): the pixel whose cell [i − 0.5, i + 0.5)
    contains the point. ``inside`` is False for non-finite coordinates and pixels outside the image;
    their rows/cols are 0.
    """
    xy = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    cols_rows = np.floor(xy + 0.5)
    # NaN and ±inf fail these comparisons, so non-finite keypoints are outside.
    inside = ((cols_rows >= 0) & (cols_rows < (width, height))).all(axis=1)
    cols, rows = np.where(inside[:, None], cols_rows, 0).astype(np.intp).T
    return rows, cols, inside


def dropped_keypoints(drop: DropMask, keypoints: np.ndarray) -> np.ndarray:
    """Bool (K,): the pixel under the keypoint (K×2 xy) is inside the image and dropped.

    Same pixel as :func:`keypoint_pixels`; a loop over the few keypoints of a sample is several times
    faster than the equivalent vectorised expression.
    """
    local, left, top = drop.local, drop.left, drop.top
    h, w = local.shape
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2).tolist()
    dropped = [False] * len(points)
    for k, (x, y) in enumerate(points):
        col, row = x + 0.5 - left, y + 0.5 - top  # NaN and ±inf fail the comparisons below
        if 0 <= col < w and 0 <= row < h:
            dropped[k] = local[int(row), int(col)]  # int() is floor for values ≥ 0
    return np.array(dropped, dtype=bool)


def candidate_keypoints(
    keypoints: np.ndarray, height: int, width: int, visibility: np.ndarray | None = None
) -> np.ndarray:
    """The keypoints (M×2) a keypoint-targeted hole may be centred on.

    A candidate has finite coordinates, lies inside the image and, when ``visibility`` (COCO v per
    keypoint) is given, is labelled (v > 0).
    """
    xy = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    _, _, ok = keypoint_pixels(xy, height, width)
    if visibility is not None:
        vis = np.asarray(visibility).reshape(-1)
        if vis.shape[0] != xy.shape[0]:
            raise ValueError(
                f"visibility has {vis.shape[0]} entries but there are {xy.shape[0]} keypoints: "
                "pass one COCO visibility value per keypoint"
            )
        ok &= vis > 0
    return xy[ok]


# -------------------------------------------------------------------------------- Cutout


def sample_cutout_holes(
    rng: np.random.Generator,
    height: int,
    width: int,
    num_holes_range: tuple[int, int],
    size_range: tuple[float, float],
    candidates: np.ndarray | None = None,
    center_jitter: float = 0.0,
) -> np.ndarray:
    """Holes (N×4 float: cx, cy, ax, ay) of AID's Cutout.

    N is uniform in ``num_holes_range`` (inclusive). Each semi-axis (ax, ay) is drawn independently,
    uniform in ``size_range`` × image width (AID's official code: radius_factor·(1 + U[0, 1))·width with
    radius_factor 0.2). The centre is uniform over the image extent [−0.5, W − 0.5) × [−0.5, H − 0.5);
    with ``candidates`` (M×2, M > 0) it is a randomly chosen candidate plus a Gaussian offset of standard
    deviation ``center_jitter`` × width per axis (keypoint-targeted Cutout).
    """
    low, high = num_holes_range
    n = low if low == high else int(rng.integers(low, high + 1))
    size_low, size_span = size_range[0] * width, (size_range[1] - size_range[0]) * width
    draws = rng.random((n, 4)).tolist()  # centre (uniform case) and semi-axes from one draw
    holes = np.array(
        [
            (u * width - 0.5, v * height - 0.5, size_low + size_span * a, size_low + size_span * b)
            for u, v, a, b in draws
        ],
        dtype=np.float64,
    ).reshape(n, 4)
    if candidates is not None and len(candidates) > 0:
        offsets = rng.normal(size=(n, 2)) * (center_jitter * width)
        holes[:, :2] = candidates[rng.integers(len(candidates), size=n)] + offsets
    return holes


def cutout_mask(height: int, width: int, holes: np.ndarray, shape: str) -> DropMask:
    """Mask of the holes (N×4: cx, cy, ax, ay); a pixel is dropped when its centre is inside a hole.

    ``ellipse``: ((j − cx)/ax)² + ((i − cy)/ay)² ≤ 1; ``rectangle``: |j − cx| ≤ ax and |i − cy| ≤ ay.
    Holes are clipped to the image; the mask's window is the union of their clipped bounding boxes.
    """
    spans = []
    for cx, cy, ax, ay in np.asarray(holes, dtype=np.float64).reshape(-1, 4).tolist():
        r0, r1 = max(0, math.ceil(cy - ay)), min(height - 1, math.floor(cy + ay))
        c0, c1 = max(0, math.ceil(cx - ax)), min(width - 1, math.floor(cx + ax))
        if r0 <= r1 and c0 <= c1:
            spans.append((cx, cy, ax, ay, r0, r1, c0, c1))
    if not spans:
        return DropMask(np.zeros((0, 0), dtype=bool), 0, 0, height, width)
    if len(spans) == 1:  # AID's default: the hole's window is the mask's window
        r0, _, c0, _ = spans[0][4:]
        return DropMask(_hole_window(*spans[0], shape), r0, c0, height, width)
    top, left = min(span[4] for span in spans), min(span[6] for span in spans)
    bottom, right = max(span[5] for span in spans), max(span[7] for span in spans)
    local = np.zeros((bottom - top + 1, right - left + 1), dtype=bool)
    for span in spans:
        r0, r1, c0, c1 = span[4:]
        local[r0 - top : r1 - top + 1, c0 - left : c1 - left + 1] |= _hole_window(*span, shape)
    return DropMask(local, top, left, height, width)


def _hole_window(
    cx: float, cy: float, ax: float, ay: float, r0: int, r1: int, c0: int, c1: int, shape: str
) -> np.ndarray:
    """Bool (r1 − r0 + 1)×(c1 − c0 + 1): which pixels of rows r0..r1, columns c0..c1 one hole covers."""
    if shape == "rectangle":
        return np.ones((r1 - r0 + 1, c1 - c0 + 1), dtype=bool)
    # (j − cx)² ≤ ax²·(1 − (i − cy)²/ay²) in float32, the Python floats cast to float32 first (the 2-D
    # comparison is twice as fast as in float64; this runs per sample, so few numpy calls matter most)
    across = np.square(np.arange(c0, c1 + 1, dtype=np.float32) - cx)
    down = np.square(np.arange(r0, r1 + 1, dtype=np.float32) - cy)
    return across <= (ax * ax - (ax * ax) / (ay * ay) * down)[:, None]


# -------------------------------------------------------------------------------- Random Erasing


def sample_erasing_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    area_range: tuple[float, float],
    aspect_range: tuple[float, float],
    max_attempts: int,
) -> np.ndarray:
    """Zhong et al.'s Random Erasing box (0×4 or 1×4 int: x0, y0, x1, y1, half-open).

    Per attempt: area uniform in ``area_range`` × H·W, aspect (h/w) uniform in ``aspect_range``,
    h = round(√(area·aspect)), w = round(√(area/aspect)); the first attempt with h ≤ H and w ≤ W is placed
    with its top-left corner uniform over all fitting positions. No fitting attempt: no box.
    """
    # Uniform floats and integers from rng.random: one numpy call per draw, as this runs per sample
    for _ in range(max_attempts):
        u_area, u_aspect = rng.random(2).tolist()
        area = (area_range[0] + (area_range[1] - area_range[0]) * u_area) * (height * width)
        aspect = aspect_range[0] + (aspect_range[1] - aspect_range[0]) * u_aspect
        h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if h <= height and w <= width:
            u_y, u_x = rng.random(2).tolist()
            y0, x0 = int(u_y * (height - h + 1)), int(u_x * (width - w + 1))
            return np.array([[x0, y0, x0 + w, y0 + h]], dtype=np.int64)
    return np.zeros((0, 4), dtype=np.int64)


def boxes_mask(height: int, width: int, boxes: np.ndarray) -> DropMask:
    """Mask of integer boxes (N×4: x0, y0, x1, y1, half-open), clipped to the image."""
    clipped = [
        (max(0, min(x0, width)), max(0, min(y0, height)), max(0, min(x1, width)), max(0, min(y1, height)))
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.int64).reshape(-1, 4).tolist()
    ]
    clipped = [box for box in clipped if box[2] > box[0] and box[3] > box[1]]
    if not clipped:
        return DropMask(np.zeros((0, 0), dtype=bool), 0, 0, height, width)
    left, top = min(box[0] for box in clipped), min(box[1] for box in clipped)
    right, bottom = max(box[2] for box in clipped), max(box[3] for box in clipped)
    local = np.zeros((bottom - top, right - left), dtype=bool)
    for x0, y0, x1, y1 in clipped:
        local[y0 - top : y1 - top, x0 - left : x1 - left] = True
    return DropMask(local, top, left, height, width)


# -------------------------------------------------------------------------------- Hide-and-Seek


def sample_has_cells(
    rng: np.random.Generator, height: int, width: int, grid_sizes: Sequence[int], hide_prob: float
) -> tuple[int, np.ndarray]:
    """(g, hidden): cell size g (pixels) drawn uniformly from ``grid_sizes`` and the hidden cells.

    The image is tiled from its top-left corner into g×g cells over its FULL height and width
    (⌈H/g⌉ × ⌈W/g⌉ cells, the last row/column clipped); each is hidden with probability ``hide_prob``.
    g = 0 hides nothing (hidden is 0×0).

    The official AID code indexes ``img[x:x_end, y:y_end]`` with x running over the width, so on a
    portrait crop (H > W) it only ever hides the top W×W square; this tiling covers the whole image.
    """
    g = int(grid_sizes[int(rng.random() * len(grid_sizes))])  # cheaper than rng.integers per sample
    if g == 0:
        return 0, np.zeros((0, 0), dtype=bool)
    return g, rng.random((-(-height // g), -(-width // g))) < hide_prob


def has_mask(height: int, width: int, grid_size: int, hidden: np.ndarray) -> DropMask:
    """Mask of the hidden g×g cells (``hidden`` is ⌈H/g⌉ × ⌈W/g⌉)."""
    if grid_size == 0 or not hidden.any():
        return DropMask(np.zeros((0, 0), dtype=bool), 0, 0, height, width)
    full = np.repeat(np.repeat(hidden, grid_size, axis=0), grid_size, axis=1)
    return DropMask.whole(full[:height, :width])


# -------------------------------------------------------------------------------- GridMask


def sample_gridmask(
    rng: np.random.Generator, d_range: tuple[int, int], ratio: float, rotate: float
) -> tuple[int, int, int, int, float]:
    """(d, l, offset_y, offset_x, angle) of a GridMask, as in the reference implementation.

    Period d uniform in ``d_range`` (inclusive), band width l = ⌊d·ratio + 0.5⌋, offsets uniform in
    [0, d), angle uniform in [0, ``rotate``) degrees (0 when ``rotate`` is 0).
    """
    u_period, u_y, u_x, u_angle = rng.random(4).tolist()  # one draw: this runs per sample
    d = d_range[0] + int(u_period * (d_range[1] - d_range[0] + 1))
    band = int(d * ratio + 0.5)
    return d, band, int(u_y * d), int(u_x * d), u_angle * rotate


def gridmask_mask(
    height: int, width: int, d: int, band: int, offset_y: int, offset_x: int, angle: float, mode: int
) -> DropMask:
    """Mask of a GridMask pattern.

    A point (u, v) (row, col) lies on a band when (u − offset_y) mod d < l or (v − offset_x) mod d < l;
    pixel centres are first rotated by ``angle`` degrees about the image centre. ``mode`` 0 drops the
    bands; ``mode`` 1 drops the (d − l)×(d − l) squares between them (the reference's ``1 − mask``).
    """
    if angle == 0.0:
        row_phase = np.arange(-offset_y, height - offset_y) % d
        col_phase = np.arange(-offset_x, width - offset_x) % d
        if mode == 0:
            return DropMask.whole(np.logical_or.outer(row_phase < band, col_phase < band))
        return DropMask.whole(np.logical_and.outer(row_phase >= band, col_phase >= band))
    rows = np.arange(height, dtype=np.float64)
    cols = np.arange(width, dtype=np.float64)
    theta = math.radians(angle)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    dy, dx = rows[:, None] - cy, cols[None, :] - cx
    u = cy + math.cos(theta) * dy - math.sin(theta) * dx
    v = cx + math.sin(theta) * dy + math.cos(theta) * dx
    on_band = (np.mod(u - offset_y, d) < band) | (np.mod(v - offset_x, d) < band)
    return DropMask.whole(on_band if mode == 0 else ~on_band)
