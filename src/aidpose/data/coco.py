"""COCO-format keypoint annotations (COCO, CrowdPose, SynthPose) → records: one row per person instance (top-down,
:func:`load_instances`) or per image with its people (bottom-up, :func:`load_images`).

Every skipped instance, box or annotation is counted under a reason in the returned summary, so a run can log
exactly what it trains and evaluates on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pycocotools.coco import COCO

from aidpose.geometry.affine import clip_boxes


@dataclass(frozen=True)
class InstanceRecords:
    """One row per person instance (struct of arrays)."""

    image_id: np.ndarray  # (N,) int64
    ann_id: np.ndarray  # (N,) int64; -1 for detection boxes
    file: np.ndarray  # (N,) str, path of the image file
    bbox: np.ndarray  # (N, 4) float32 (x, y, w, h), clipped to the image
    keypoints: np.ndarray  # (N, K, 3) float32 (x, y, v); zeros for detection boxes
    area: np.ndarray  # (N,) float32 box area w·h
    score: np.ndarray  # (N,) float32 box score; 1 for ground-truth boxes

    def __len__(self) -> int:
        return len(self.image_id)

    def select(self, mask: np.ndarray) -> InstanceRecords:
        """The records where ``mask`` is true."""
        return InstanceRecords(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


def is_labelled_person(ann: dict[str, Any]) -> bool:
    """The one rule of who is a person to train on: not ``iscrowd`` and at least one labelled keypoint (v > 0)."""
    return not ann.get("iscrowd", 0) and bool((np.asarray(ann.get("keypoints", ()))[2::3] > 0).any())


def how_to_get_data(path: str | os.PathLike, layout: str = "coco") -> str:
    """One sentence on how to obtain or generate the data behind ``path``."""
    if "synthpose" in str(path).lower():
        return (
            "Generate SynthPose with `python -m aidpose.data.synthpose --out DIR` and point the config there."
        )
    if layout == "crowdpose":
        return "Download CrowdPose (images and crowdpose_*.json) from https://github.com/Jeff-sjtu/CrowdPose."
    return (
        "Download COCO 2017 (train2017/, val2017/ and annotations_trainval2017.zip with "
        "person_keypoints_*2017.json) from https://cocodataset.org/#download, or generate SynthPose with "
        "`python -m aidpose.data.synthpose --out DIR`."
    )


def load_coco(ann_file: str | os.PathLike, layout: str = "coco", images_only: bool = False) -> COCO:
    """Load a COCO annotation file into a (quiet) pycocotools ``COCO``, with clear errors.

    ``images_only``: a file of images without ``annotations`` (COCO test-dev's ``image_info_test-dev2017.json``)
    is accepted too; :func:`has_annotations` tells the two apart."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}. {how_to_get_data(path, layout)}")
    try:
        dataset = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-download or regenerate it.") from err
    needed = {"images"} if images_only else {"images", "annotations"}
    if not isinstance(dataset, dict) or not needed <= dataset.keys():
        raise ValueError(
            f"{path} is not a COCO annotation file: it needs 'images' and 'annotations' lists. A file of images "
            "only (e.g. COCO test-dev's image_info_test-dev2017.json) is evaluated as dataset.source.test_file, "
            "with person boxes from test.boxes=detections test.det_file=FILE for a top-down model."
        )
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def has_annotations(coco: COCO) -> bool:
    """Whether a loaded file has ground truth (False: images only, e.g. COCO test-dev: no metric to compute)."""
    return "annotations" in coco.dataset


def image_sizes(
    coco: COCO, image_ids: Sequence[int], ann_file: str | os.PathLike, dtype: type = np.float64
) -> np.ndarray:
    """(N, 2) (width, height) of the images ``image_ids`` from the annotation file, else an error naming it."""
    try:
        return np.array(
            [(coco.imgs[int(i)]["width"], coco.imgs[int(i)]["height"]) for i in image_ids], dtype=dtype
        ).reshape(-1, 2)
    except KeyError as err:
        raise ValueError(
            f"{ann_file}: image {err} lacks 'width'/'height' (or is not listed in 'images')"
        ) from err


def gt_instances(
    coco: COCO, ann_file: str | os.PathLike, image_dir: str | os.PathLike, num_keypoints: int, counts: Counter
) -> InstanceRecords:
    """Ground-truth person instances: skips crowd, keypoint-less and empty (after clipping) boxes."""
    kept = []
    for ann in coco.dataset["annotations"]:
        counts["annotations"] += 1
        if ann.get("iscrowd", 0):
            counts["skipped_crowd"] += 1
            continue
        kpts = np.asarray(ann.get("keypoints", ()), dtype=np.float32)
        if kpts.size and kpts.size != 3 * num_keypoints:
            raise ValueError(
                f"{ann_file}: annotation {ann.get('id')} has {kpts.size // 3} keypoints but the layout has "
                f"{num_keypoints}; choose the matching layout (coco: 17, crowdpose: 14)."
            )
        if not kpts.size or not (kpts[2::3] > 0).any():
            counts["skipped_no_keypoints"] += 1
            continue
        kept.append((ann, kpts.reshape(num_keypoints, 3)))
    image_ids = [ann["image_id"] for ann, _ in kept]
    boxes, valid = clip_boxes(
        np.array([ann["bbox"] for ann, _ in kept], dtype=np.float64).reshape(-1, 4),
        image_sizes(coco, image_ids, ann_file),
    )
    counts["skipped_empty_box"] += int((~valid).sum())
    records = InstanceRecords(
        image_id=np.array(image_ids, dtype=np.int64),
        ann_id=np.array([ann["id"] for ann, _ in kept], dtype=np.int64),
        file=_image_paths(coco, image_ids, image_dir),
        bbox=boxes,
        keypoints=np.stack([k for _, k in kept]) if kept else np.zeros((0, num_keypoints, 3), np.float32),
        area=boxes[:, 2] * boxes[:, 3],
        score=np.ones(len(kept), dtype=np.float32),
    )
    return records.select(valid)


def detection_instances(
    coco: COCO,
    det_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    num_keypoints: int,
    det_score_thr: float,
    min_box_area: float,
    counts: Counter,
) -> InstanceRecords:
    """Person boxes of a COCO detection-results JSON (category 1) on the images of ``coco``.

    Drops (and counts) other categories, boxes of images not in ``coco``, scores below ``det_score_thr``,
    boxes empty after clipping and boxes whose clipped area is below ``min_box_area``.
    """
    path = Path(det_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"detection results file not found: {path}. Give a COCO detection-results JSON (a list of "
            "{image_id, category_id, bbox, score}), e.g. HRNet's "
            "COCO_val2017_detections_AP_H_56_person.json, or use boxes='gt'."
        )
    try:
        detections = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}).") from err
    if not isinstance(detections, list):
        raise ValueError(f"{path} is not a COCO detection-results file (a JSON list of boxes).")
    kept = []
    for det in detections:
        counts["detections"] += 1
        if det["category_id"] != 1:
            counts["skipped_non_person"] += 1
        elif det["image_id"] not in coco.imgs:
            counts["skipped_unknown_image"] += 1
        elif det["score"] < det_score_thr:
            counts["skipped_low_score"] += 1
        else:
            kept.append(det)
    image_ids = [det["image_id"] for det in kept]
    boxes, valid = clip_boxes(
        np.array([det["bbox"] for det in kept], dtype=np.float64).reshape(-1, 4),
        image_sizes(coco, image_ids, path),
    )
    area = boxes[:, 2] * boxes[:, 3]
    small = valid & (area < min_box_area)
    counts["skipped_empty_box"] += int((~valid).sum())
    counts["skipped_small_box"] += int(small.sum())
    records = InstanceRecords(
        image_id=np.array(image_ids, dtype=np.int64),
        ann_id=np.full(len(kept), -1, dtype=np.int64),
        file=_image_paths(coco, image_ids, image_dir),
        bbox=boxes,
        keypoints=np.zeros((len(kept), num_keypoints, 3), dtype=np.float32),
        area=area,
        score=np.array([det["score"] for det in kept], dtype=np.float32),
    )
    return records.select(valid & ~small)


def _image_paths(coco: COCO, image_ids: list[int], image_dir: str | os.PathLike) -> np.ndarray:
    paths = {i: os.path.join(image_dir, coco.imgs[i]["file_name"]) for i in set(image_ids)}
    return np.array([paths[i] for i in image_ids], dtype=str)


def check_image_files(
    records: InstanceRecords, skip_missing: bool, counts: Counter, hint: str
) -> InstanceRecords:
    """Drop (and count) instances whose image file is missing, or raise naming the first missing file."""
    files, inverse = np.unique(records.file, return_inverse=True)
    exists = np.array([os.path.isfile(f) for f in files], dtype=bool)
    if exists.all():
        return records
    missing = files[~exists]
    if not skip_missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(files)} image files are missing, the first: {missing[0]}. {hint} "
            "Or set skip_unreadable_images=true to skip (and count) them."
        )
    keep = exists[inverse]
    counts["missing_images"] += len(missing)
    counts["skipped_missing_image"] += int((~keep).sum())
    return records.select(keep)


def load_instances(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    *,
    num_keypoints: int,
    layout: str = "coco",
    boxes: str = "gt",
    det_file: str | os.PathLike | None = None,
    det_score_thr: float = 0.0,
    min_box_area: float = 0.0,
    skip_unreadable_images: bool = False,
) -> tuple[COCO, InstanceRecords, dict[str, int]]:
    """Load the ground truth and the top-down instances to crop (ground-truth or detection boxes).

    Returns the pycocotools ``COCO`` of ``ann_file``, the instance records and a summary of counts
    (``instances``, ``images`` and every ``skipped_*`` reason; zero counts omitted).
    """
    if boxes not in ("gt", "detections"):
        raise ValueError(f"boxes must be 'gt' or 'detections', got {boxes!r}")
    if boxes == "detections" and det_file is None:
        raise ValueError("boxes='detections' needs det_file (a COCO detection-results JSON)")
    coco = load_coco(ann_file, layout, images_only=boxes == "detections")
    hint = how_to_get_data(ann_file, layout)
    if not Path(image_dir).is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir} (images of {ann_file}). {hint}")
    counts: Counter = Counter()
    if boxes == "gt":
        records = gt_instances(coco, ann_file, image_dir, num_keypoints, counts)
    else:
        records = detection_instances(
            coco, det_file, image_dir, num_keypoints, det_score_thr, min_box_area, counts
        )
    records = check_image_files(records, skip_unreadable_images, counts, hint)
    counts["instances"] = len(records)
    counts["images"] = len(np.unique(records.image_id))
    if not len(records):
        raise ValueError(f"no instances left to use from {ann_file} (boxes={boxes!r}): {dict(counts)}")
    return coco, records, {key: int(value) for key, value in sorted(counts.items()) if value}


class ImageRecords(NamedTuple):
    """One row per image: id, file, size, people (N_i, K, 3) with labelled keypoints, annotations."""

    image_id: np.ndarray
    file: list[str]
    size: np.ndarray  # (I, 2) width, height
    keypoints: list[np.ndarray]
    annotations: list[list[dict[str, Any]]]


def load_images(
    ann_file: str | os.PathLike, image_dir: str | os.PathLike, num_keypoints: int, layout: str = "coco"
) -> tuple[COCO, ImageRecords, dict[str, int]]:
    """Images of a COCO-format file with at least one annotation (HigherHRNet's training set).

    Labelled persons (:func:`is_labelled_person`) are trained on; the other annotations feed the ignore
    mask. Returns the pycocotools ``COCO``, the records and counts (images, people, skipped).
    """
    coco = load_coco(ann_file, layout)
    counts: Counter = Counter()
    ids, files, sizes, people, anns = [], [], [], [], []
    for image_id, image in coco.imgs.items():
        image_anns = coco.imgToAnns.get(image_id, [])
        if not image_anns:
            counts["skipped_images_without_annotations"] += 1
            continue
        kps = []
        for ann in image_anns:
            k = np.asarray(ann.get("keypoints", ()), dtype=np.float32)
            if k.size and k.size != 3 * num_keypoints:
                raise ValueError(
                    f"{ann_file}: annotation {ann.get('id')} has {k.size // 3} keypoints but the layout has "
                    f"{num_keypoints}; choose the matching layout (coco: 17, crowdpose: 14)."
                )
            if not is_labelled_person(ann):
                counts["ignored_annotations"] += 1
                continue
            kps.append(k.reshape(num_keypoints, 3))
        ids.append(image_id)
        files.append(os.path.join(image_dir, image["file_name"]))
        sizes.append((image["width"], image["height"]))
        people.append(np.stack(kps) if kps else np.zeros((0, num_keypoints, 3), np.float32))
        anns.append(image_anns)
    counts["images"] = len(ids)
    counts["people"] = sum(len(p) for p in people)
    if not ids:
        raise ValueError(f"no annotated images in {ann_file}. {how_to_get_data(ann_file, layout)}")
    records = ImageRecords(
        np.array(ids, dtype=np.int64), files, np.array(sizes, dtype=np.int64), people, anns
    )
    return coco, records, {k: int(v) for k, v in sorted(counts.items()) if v}
