"""Ground truth of a COCO-format keypoint annotation file as flat numpy arrays."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

AnnotationSource = str | Path | Mapping[str, Any]


@dataclass(frozen=True)
class GroundTruth:
    """All annotations of one file, grouped by image in sorted-id order, file order within an image.

    This is the order in which pycocotools visits ground truth (``imgToAnns`` keeps file order),
    which decides ties in the greedy matching.
    """

    source: str
    image_ids: np.ndarray  # (I,) sorted unique ids of every image in the file
    category_ids: np.ndarray  # (C,) sorted ids of the file's categories
    crowd_index: np.ndarray | None  # (I,) CrowdPose "crowdIndex" per image, None if any image lacks it
    ann_id: np.ndarray  # (G,) annotation ids
    image_index: np.ndarray  # (G,) position of the annotation's image in ``image_ids``
    category_id: np.ndarray  # (G,)
    keypoints: np.ndarray  # (G, K, 3) float64 x, y, v
    bbox: np.ndarray  # (G, 4) x, y, w, h
    area: np.ndarray  # (G,) segmentation area, NaN where the annotation has none
    iscrowd: np.ndarray  # (G,) bool
    num_keypoints: np.ndarray  # (G,) the file's num_keypoints (counted from v > 0 where absent)

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def with_keypoints(self, keypoints: np.ndarray) -> GroundTruth:
        """Copy with new keypoints and ``num_keypoints`` recounted from ``v > 0``."""
        return replace(
            self, keypoints=keypoints, num_keypoints=np.count_nonzero(keypoints[..., 2] > 0, axis=1)
        )


def _read_json(source: AnnotationSource) -> tuple[str, Mapping[str, Any]]:
    if isinstance(source, Mapping):
        return "<dict>", source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    with path.open() as f:
        return str(path), json.load(f)


def _annotation_error(source: str, ann: Mapping[str, Any], message: str) -> ValueError:
    return ValueError(f"{source}: annotation id={ann.get('id')} (image_id={ann.get('image_id')}) {message}")


def load_ground_truth(source: AnnotationSource, num_keypoints: int) -> GroundTruth:
    """Read a COCO-format keypoint file (path or already-parsed dict) into a :class:`GroundTruth`.

    Every annotation needs ``id``, ``image_id``, ``category_id``, ``bbox`` and ``keypoints`` with
    ``3 * num_keypoints`` numbers, and must belong to an image of the file. ``iscrowd`` defaults to 0
    and ``num_keypoints`` to the count of ``v > 0``; ``area`` may be absent (CrowdPose files), which only
    the COCO evaluation rejects.
    """
    name, data = _read_json(source)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{name}: not a COCO annotation file (no {key!r} list)")
    images = data["images"]
    image_ids = np.unique(np.array([img["id"] for img in images]))
    position = {image_id: i for i, image_id in enumerate(image_ids.tolist())}
    crowd_index = None
    if images and all("crowdIndex" in img for img in images):
        by_id = {img["id"]: float(img["crowdIndex"]) for img in images}
        crowd_index = np.array([by_id[i] for i in image_ids.tolist()], dtype=np.float64)

    anns = data["annotations"]
    length = 3 * num_keypoints
    for ann in anns:
        for key in ("id", "image_id", "category_id", "bbox", "keypoints"):
            if key not in ann:
                raise _annotation_error(name, ann, f"has no {key!r} field")
        if len(ann["keypoints"]) != length:
            raise _annotation_error(
                name,
                ann,
                f"has {len(ann['keypoints'])} keypoint values, expected {length} ({num_keypoints} x 3)",
            )
        if ann["image_id"] not in position:
            raise _annotation_error(name, ann, "refers to an image that is not in the file's 'images' list")

    image_index = np.array([position[a["image_id"]] for a in anns], dtype=np.int64)
    order = np.argsort(image_index, kind="stable")
    anns = [anns[i] for i in order]
    keypoints = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, num_keypoints, 3)
    stored_count = [a.get("num_keypoints") for a in anns]
    counted = np.count_nonzero(keypoints[..., 2] > 0, axis=1)
    return GroundTruth(
        source=name,
        image_ids=image_ids,
        category_ids=np.unique(np.array([c["id"] for c in data["categories"]], dtype=np.int64)),
        crowd_index=crowd_index,
        ann_id=np.array([a["id"] for a in anns], dtype=np.int64),
        image_index=image_index[order],
        category_id=np.array([a["category_id"] for a in anns], dtype=np.int64),
        keypoints=keypoints,
        bbox=np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
        area=np.array([a.get("area", np.nan) for a in anns], dtype=np.float64),
        iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
        num_keypoints=np.array(
            [c if s is None else s for s, c in zip(stored_count, counted.tolist(), strict=True)],
            dtype=np.int64,
        ),
    )
