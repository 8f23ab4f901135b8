"""Preview grids: samples with their skeletons, visible (v=2) joints filled, hidden (v=1) joints as rings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from aidpose.data.keypoints import COCO

LEFT_BGR, RIGHT_BGR, CENTRE_BGR = (0, 140, 255), (255, 120, 0), (60, 200, 60)
BOX_BGR = (200, 200, 200)
LEGEND = "filled: visible (v=2)   ring: hidden (v=1)   orange: left   blue: right"


def _side_colour(index: int) -> tuple[int, int, int]:
    name = COCO.keypoint_names[index]
    return LEFT_BGR if name.startswith("left") else RIGHT_BGR if name.startswith("right") else CENTRE_BGR


def draw_annotations(image: np.ndarray, annotations: Sequence[dict]) -> np.ndarray:
    """A copy of ``image`` with each annotation's box, skeleton and keypoints drawn."""
    out = image.copy()
    for ann in annotations:
        x, y, w, h = ann["bbox"]
        cv2.rectangle(out, (round(x), round(y)), (round(x + w), round(y + h)), BOX_BGR, 1)
        kps = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        for a, b in COCO.skeleton:
            a, b = a - 1, b - 1
            if kps[a, 2] > 0 and kps[b, 2] > 0:
                colour = _side_colour(a) if _side_colour(a) == _side_colour(b) else CENTRE_BGR
                p1, p2 = tuple(np.round(kps[a, :2]).astype(int)), tuple(np.round(kps[b, :2]).astype(int))
                cv2.line(out, p1, p2, colour, 1, cv2.LINE_AA)
        for i, (kx, ky, v) in enumerate(kps):
            centre = (round(kx), round(ky))
            if v == 2:
                cv2.circle(out, centre, 3, _side_colour(i), -1, cv2.LINE_AA)
            elif v == 1:
                cv2.circle(out, centre, 4, (255, 255, 255), 1, cv2.LINE_AA)
                cv2.circle(out, centre, 2, _side_colour(i), 1, cv2.LINE_AA)
    return out


def preview_grid(images: Sequence[np.ndarray], columns: int = 4, legend: str = LEGEND) -> np.ndarray:
    """Tile equally sized images into a grid (2 px gaps) with a legend strip underneath."""
    if not images:
        raise ValueError("preview: no images to show")
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    grid = np.full((rows * (h + 2) + 22, columns * (w + 2), 3), 32, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = image
    cv2.putText(
        grid, legend, (4, grid.shape[0] - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA
    )
    return grid


def write_preview(dataset_dir: str | Path, path: str | Path, *, split: str = "val", count: int = 12) -> Path:
    """Draw the first ``count`` images of ``split`` of a generated dataset, annotated, into a PNG grid."""
    dataset_dir, path = Path(dataset_dir), Path(path)
    data = json.loads((dataset_dir / "annotations" / f"person_keypoints_{split}.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    tiles = []
    for entry in data["images"][:count]:
        image = cv2.imread(str(dataset_dir / "images" / split / entry["file_name"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(
                f"preview: cannot read {entry['file_name']} in {dataset_dir / 'images' / split}"
            )
        tiles.append(draw_annotations(image, by_image.get(entry["id"], [])))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), preview_grid(tiles, columns=min(4, max(len(tiles), 1)))):
        raise OSError(f"--preview: could not write {path} (is it a .png path in a writable folder?)")
    return path
