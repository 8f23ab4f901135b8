"""Pictures of the droppers at work: person crops under each dropper, keypoints marked kept or dropped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from aidpose.aid.transforms import InformationDropper
from aidpose.data.coco import load_instances
from aidpose.data.keypoints import get_layout
from aidpose.geometry.affine import apply_affine, box_to_center_scale, udp_warp_matrix, warp_to_rgb

KEPT = (40, 220, 40)  # RGB: visible keypoint whose appearance stayed
DROPPED = (255, 40, 40)  # RGB: keypoint whose pixel was dropped
HIDDEN = (250, 210, 40)  # RGB: labelled but occluded in the photo (COCO v=1), not dropped


@dataclass(frozen=True)
class PersonCrop:
    """A top-down crop (RGB uint8 H×W×3) with its keypoints (K×2 crop xy) and COCO visibility (K,)."""

    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray


def person_crops(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    input_size: tuple[int, int] = (192, 256),
    max_crops: int = 4,
    min_keypoints: int = 8,
    layout: str = "coco",
) -> list[PersonCrop]:
    """Centred, unaugmented crops (``input_size`` = (width, height)) of the persons with the most keypoints.

    Persons need at least ``min_keypoints`` labelled keypoints; the ``max_crops`` best labelled are taken.
    """
    num_keypoints = get_layout(layout).num_keypoints
    _, records, _ = load_instances(ann_file, image_dir, num_keypoints=num_keypoints, layout=layout)
    labelled = (records.keypoints[:, :, 2] > 0).sum(axis=1)
    order = [i for i in np.argsort(-labelled, kind="stable") if labelled[i] >= min_keypoints][:max_crops]
    centers, scales = box_to_center_scale(records.bbox, input_size[0] / input_size[1])
    crops = []
    for i in order:
        image = cv2.imread(str(records.file[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read image {records.file[i]} (listed in {ann_file})")
        matrix = udp_warp_matrix(centers[i], scales[i], 0.0, input_size)
        crops.append(
            PersonCrop(
                image=warp_to_rgb(image, matrix, input_size),
                keypoints=apply_affine(records.keypoints[i, :, :2], matrix),
                visibility=records.keypoints[i, :, 2].astype(np.int64),
            )
        )
    return crops


def draw_keypoints(
    image: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray, dropped: np.ndarray
) -> np.ndarray:
    """``image`` with its labelled keypoints: kept (green dot), occluded (yellow ring), dropped (red X)."""
    canvas = np.ascontiguousarray(image).copy()
    radius = max(2, round(min(canvas.shape[:2]) / 64))
    for (x, y), v, hit in zip(np.asarray(keypoints, float), visibility, dropped, strict=True):
        if v <= 0 or not np.isfinite([x, y]).all():
            continue
        centre = (round(x), round(y))
        if hit:
            d = radius + 1
            cv2.line(
                canvas,
                (centre[0] - d, centre[1] - d),
                (centre[0] + d, centre[1] + d),
                DROPPED,
                2,
                cv2.LINE_AA,
            )
            cv2.line(
                canvas,
                (centre[0] - d, centre[1] + d),
                (centre[0] + d, centre[1] - d),
                DROPPED,
                2,
                cv2.LINE_AA,
            )
        elif v == 1:
            cv2.circle(canvas, centre, radius, HIDDEN, 1, cv2.LINE_AA)
        else:
            cv2.circle(canvas, centre, radius, KEPT, -1, cv2.LINE_AA)
    return canvas


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a caption bar on top."""
    bar = np.full((22, tile.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def dropper_grid(
    crops: list[PersonCrop], droppers: Mapping[str, InformationDropper | None], seed: int = 0, gap: int = 4
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
            cells.append(_label(tile, name if dropper is None else f"{name} {hidden}/{visible}"))
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
