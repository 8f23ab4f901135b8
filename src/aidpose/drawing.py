"""Every picture aidpose draws: skeletons of predicted or labelled people (``aidpose.predict``, the W&B panels),
keypoints kept / occluded / dropped by a dropper (the panels, ``scripts/show_droppers.py``, the droppers
notebook), person crops of an annotation file and the droppers' grid (the AID paper's Figure 3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from aidpose.data.coco import load_instances
from aidpose.data.keypoints import KeypointLayout, get_layout
from aidpose.data.pipeline import KeypointDropper
from aidpose.geometry.affine import apply_affine, invert_affine
from aidpose.geometry.inference import crop_boxes

KEPT = (40, 220, 40)  # RGB: visible keypoint whose appearance stayed
DROPPED = (255, 40, 40)  # RGB: keypoint whose pixel was dropped
HIDDEN = (250, 210, 40)  # RGB: labelled but occluded in the photo (COCO v=1), not dropped


def side_colors(layout: KeypointLayout) -> np.ndarray:
    """BGR colour per keypoint: orange for left, blue for right, green for the rest."""
    colors = np.array([(0, 200, 0)] * layout.num_keypoints, dtype=np.int64)
    for k, name in enumerate(layout.keypoint_names):
        if name.startswith("left_"):
            colors[k] = (0, 140, 255)
        elif name.startswith("right_"):
            colors[k] = (255, 120, 0)
    return colors


def draw_poses(
    image_bgr: np.ndarray, keypoints: np.ndarray, layout: KeypointLayout, score_thr: float = 0.3
) -> np.ndarray:
    """A copy of the image with the skeletons (N, K, 3) drawn; keypoints scoring below ``score_thr`` are left out.

    Limbs follow the layout's (1-based) skeleton and take the colour of their side (left, right, centre).
    """
    canvas = image_bgr.copy()
    colors = side_colors(layout)
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    for pose in np.asarray(keypoints).reshape(-1, layout.num_keypoints, 3):
        shown = pose[:, 2] >= score_thr
        points = [(round(float(x)), round(float(y))) for x, y in pose[:, :2]]
        for a, b in layout.skeleton:
            a, b = a - 1, b - 1
            if shown[a] and shown[b]:
                color = colors[a] if (colors[a] == colors[b]).all() else np.array((0, 200, 0))
                cv2.line(canvas, points[a], points[b], tuple(int(c) for c in color), thickness, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            cv2.circle(canvas, points[k], thickness + 2, tuple(int(c) for c in colors[k]), -1, cv2.LINE_AA)
    return canvas


def draw_keypoints(
    image: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray, dropped: np.ndarray
) -> np.ndarray:
    """RGB ``image`` with its labelled keypoints ``(M, 2)``: kept (green dot), occluded (yellow ring), dropped
    (red X)."""
    canvas = np.ascontiguousarray(image).copy()
    radius = max(2, round(min(canvas.shape[:2]) / 64))
    for (x, y), v, hit in zip(np.asarray(keypoints, float), visibility, dropped, strict=True):
        if v <= 0 or not np.isfinite([x, y]).all():
            continue
        centre = (round(x), round(y))
        if hit:
            d = radius + 1
            for end_a, end_b in (((-d, -d), (d, d)), ((-d, d), (d, -d))):
                start = (centre[0] + end_a[0], centre[1] + end_a[1])
                cv2.line(canvas, start, (centre[0] + end_b[0], centre[1] + end_b[1]), DROPPED, 2, cv2.LINE_AA)
        elif v == 1:
            cv2.circle(canvas, centre, radius, HIDDEN, 1, cv2.LINE_AA)
        else:
            cv2.circle(canvas, centre, radius, KEPT, -1, cv2.LINE_AA)
    return canvas


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a caption bar on top."""
    bar = np.full((22, tile.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


@dataclass(frozen=True)
class PersonCrop:
    """A top-down crop (RGB uint8 H×W×3) with its keypoints (K×2 crop xy) and COCO visibility (K,)."""

    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray


def labelled_crops(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    input_size: tuple[int, int] = (192, 256),
    max_crops: int = 4,
    min_keypoints: int = 8,
    layout: str = "coco",
) -> list[PersonCrop]:
    """Centred, unaugmented crops (``input_size`` = (width, height), the inference crops of
    :func:`~aidpose.geometry.inference.crop_boxes`) of the ``max_crops`` persons with the most labelled
    keypoints, at least ``min_keypoints``."""
    num_keypoints = get_layout(layout).num_keypoints
    _, records, _ = load_instances(ann_file, image_dir, num_keypoints=num_keypoints, layout=layout)
    labelled = (records.keypoints[:, :, 2] > 0).sum(axis=1)
    order = [i for i in np.argsort(-labelled, kind="stable") if labelled[i] >= min_keypoints][:max_crops]
    crops = []
    for i in order:
        image = cv2.imread(str(records.file[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read image {records.file[i]} (listed in {ann_file})")
        [crop], [to_image] = crop_boxes(image, records.bbox[i], input_size)
        crops.append(
            PersonCrop(
                image=np.ascontiguousarray(crop.transpose(1, 2, 0)),
                keypoints=apply_affine(records.keypoints[i, :, :2], invert_affine(to_image)),
                visibility=records.keypoints[i, :, 2].astype(np.int64),
            )
        )
    return crops


def dropper_grid(
    crops: list[PersonCrop], droppers: Mapping[str, KeypointDropper | None], seed: int = 0, gap: int = 4
) -> np.ndarray:
    """RGB grid: one row per crop, one column per dropper (None = the original), keypoints drawn.

    Each cell applies ``drop`` to a copy of the crop with a generator seeded by (seed, row, column), and
    its caption counts the visible keypoints (v = 2) the dropper hid.
    """
    if not crops:
        raise ValueError("dropper_grid needs at least one crop")
    rows = []
    for r, crop in enumerate(crops):
        cells = []
        for c, (name, dropper) in enumerate(droppers.items()):
            dropped = np.zeros(len(crop.keypoints), dtype=bool)
            image = crop.image.copy()
            if dropper is not None:
                rng = np.random.default_rng([seed, r, c])
                image, dropped = dropper.drop(image, crop.keypoints, rng, visibility=crop.visibility)
            hidden = int((dropped & (crop.visibility == 2)).sum())
            visible = int((crop.visibility == 2).sum())
            tile = draw_keypoints(image, crop.keypoints, crop.visibility, dropped)
            cells.append(caption(tile, name if dropper is None else f"{name} {hidden}/{visible}"))
        height = max(cell.shape[0] for cell in cells)
        cells = [
            np.pad(cell, ((0, height - cell.shape[0]), (0, gap), (0, 0)), constant_values=255)
            for cell in cells
        ]
        rows.append(np.pad(np.hstack(cells), ((0, gap), (0, 0), (0, 0)), constant_values=255))
    width = max(row.shape[1] for row in rows)
    return np.vstack(
        [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    )
