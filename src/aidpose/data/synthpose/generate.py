"""Write a SynthPose dataset: ``images/{train,val}/<12-digit id>.jpg`` and COCO keypoint annotation files."""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import cv2
import numpy as np

from aidpose.data.keypoints import COCO
from aidpose.data.synthpose.dataset_statistics import crowd_index
from aidpose.data.synthpose.scene import get_preset, render_sample

# Bump whenever the generator's output changes for the same parameters (invalidates cached datasets).
GENERATOR_VERSION = "2"
MANIFEST_NAME = "synthpose_manifest.json"
JPEG_QUALITY = 92
SPLITS = ("train", "val")
# image ids: train 1..N, val 10^9+1..; the val set does not depend on num_train (and ids never collide)
IMAGE_ID_BASE = {"train": 0, "val": 1_000_000_000}
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 64, 4096


def validate_params(*, num_train, num_val, seed, image_size, preset) -> None:
    """Raise ``ValueError`` naming the offending option if any generator parameter is invalid."""
    for name, value in (("num_train", num_train), ("num_val", num_val), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if num_train >= IMAGE_ID_BASE["val"] or num_val >= IMAGE_ID_BASE["val"]:
        raise ValueError(f"num_train and num_val must each be below {IMAGE_ID_BASE['val']}")
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, numbers.Integral)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size!r}"
        )
    get_preset(preset)


def generator_params(*, num_train: int, num_val: int, seed: int, image_size: int, preset: str) -> dict:
    """Every parameter that determines the output, with the generator version (the cache key)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "num_train": int(num_train),
        "num_val": int(num_val),
        "seed": int(seed),
        "image_size": int(image_size),
        "preset": preset,
        "jpeg_quality": JPEG_QUALITY,
    }


def image_file_name(image_id: int) -> str:
    """COCO-style file name of an image id: 12 digits, zero padded."""
    return f"{image_id:012d}.jpg"


def coco_categories() -> list[dict]:
    """The COCO person category with its keypoint names and 1-based skeleton."""
    return [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(COCO.keypoint_names),
            "skeleton": [list(edge) for edge in COCO.skeleton],
        }
    ]


def prepare_folder(path: Path) -> None:
    """Create ``path`` if needed and check that files can be written into it (``ValueError`` if not)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"cannot write into {path} ({err.strerror or err}); choose a writable folder"
        ) from err


def generate_split(out_dir: Path, split: str, count: int, *, seed: int, image_size: int, preset: str) -> dict:
    """Render and write ``count`` images of ``split``; return the split's COCO dict (also written to disk)."""
    preset_ = get_preset(preset)
    image_dir = out_dir / "images" / split
    prepare_folder(image_dir)
    images, annotations = [], []
    for index in range(count):
        image_id = IMAGE_ID_BASE[split] + index + 1
        sample = render_sample(seed, index, split=split, image_size=image_size, preset=preset)
        ok, jpeg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for image {image_id}")
        (image_dir / image_file_name(image_id)).write_bytes(jpeg.tobytes())
        entry = {
            "id": image_id,
            "file_name": image_file_name(image_id),
            "width": image_size,
            "height": image_size,
        }
        if preset_.crowd_index:
            kps = np.array([a["keypoints"] for a in sample.annotations], float).reshape(
                -1, COCO.num_keypoints, 3
            )
            boxes = np.array([a["bbox"] for a in sample.annotations], float).reshape(-1, 4)
            entry["crowdIndex"] = round(crowd_index(kps, boxes), 4)
        images.append(entry)
        for ann in sample.annotations:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    coco = {
        "info": {
            "description": f"SynthPose ({preset} preset): procedural COCO-format person keypoints",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "split": split,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(),
    }
    ann_dir = out_dir / "annotations"
    prepare_folder(ann_dir)
    (ann_dir / f"person_keypoints_{split}.json").write_text(json.dumps(coco, separators=(",", ":")))
    return coco


def generate_synthpose(
    out_dir: str | Path,
    *,
    num_train: int,
    num_val: int,
    seed: int,
    image_size: int = 256,
    preset: str = "default",
) -> Path:
    """Generate SynthPose into ``out_dir`` (``images/`` and ``annotations/``); return ``out_dir``.

    The same arguments give byte-identical files. A manifest (``synthpose_manifest.json``) with the
    parameters and counts is written last, so a folder with a manifest is complete.
    """
    validate_params(num_train=num_train, num_val=num_val, seed=seed, image_size=image_size, preset=preset)
    out_dir = Path(out_dir)
    try:
        prepare_folder(out_dir)
    except ValueError as err:
        raise ValueError(f"out_dir: {err}") from err
    params = generator_params(
        num_train=num_train, num_val=num_val, seed=seed, image_size=image_size, preset=preset
    )
    counts = {}
    for split, count in zip(SPLITS, (num_train, num_val), strict=True):
        coco = generate_split(out_dir, split, count, seed=seed, image_size=image_size, preset=preset)
        counts[split] = {"images": len(coco["images"]), "annotations": len(coco["annotations"])}
    manifest = {"params": params, "counts": counts}
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return out_dir
