"""Time the AID droppers next to albumentations' own dropouts, and AID's share of the top-down pipeline.

    PYTHONPATH=src python scripts/bench_droppers.py [--number 200] [--repeat 5] [--coco DIR] [--pipeline-samples 500]

Prints one JSON document: µs per call of each dropper's ``drop`` (in place, as aidpose's sample pipeline
calls it) and of its albumentations ``__call__`` (copies the image), on a 256×192×3 uint8 crop and a
512×512×3 uint8 image, next to the albumentations transform with comparable holes. Times are the best of
``--repeat`` means over ``--number`` calls, on one thread. Also the share of the whole training sample
pipeline spent in each dropper, on SynthPose and on the real COCO photos.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np

from aidpose.aid import Cutout, GridMask, HideAndSeek, InformationDropper, RandomErasing
from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.pipeline import StageTimer
from aidpose.data.sources import SynthPoseSource
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.augment import TopDownAugmentation

SIZES = ((256, 192), (512, 512))  # (height, width)
TARGET_SHARE = 0.05  # issue 4: AID's share of the whole top-down sample pipeline
REPO = Path(__file__).resolve().parents[1]
DEFAULT_COCO = REPO / "tests" / "data" / "coco_mini"


def droppers_and_counterparts(
    height: int, width: int
) -> dict[str, tuple[InformationDropper, A.BasicTransform]]:
    """Each dropper at its default settings (applied every call) and albumentations' closest transform."""
    cutout_side = (0.4 * width / height, min(1.0, 0.8 * width / height))  # ellipse bbox 0.4–0.8 × width
    grid_units = (96, min(224, height, width))
    return {
        "Cutout": (
            Cutout(),
            A.CoarseDropout(
                num_holes_range=(1, 1),
                hole_height_range=cutout_side,
                hole_width_range=(0.4, 0.8),
                fill=0,
                p=1,
            ),
        ),
        "RandomErasing": (
            RandomErasing(p=1.0),
            A.Erasing(scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3), fill=(124, 116, 104), p=1),
        ),
        "HideAndSeek": (HideAndSeek(), A.GridDropout(ratio=0.5, unit_size_range=(16, 44), fill=0, p=1)),
        "GridMask": (
            GridMask(),
            A.GridDropout(ratio=0.5, unit_size_range=grid_units, fill=(124, 116, 104), p=1),
        ),
    }


def per_call_us(fn: Any, number: int, repeat: int) -> float:
    fn()
    return round(min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6, 1)


def bench_transforms(number: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    for height, width in SIZES:
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        keypoints = rng.random((17, 2)) * (width, height)
        work = image.copy()
        row: dict[str, Any] = {}
        for name, (dropper, counterpart) in droppers_and_counterparts(height, width).items():
            drop_rng = np.random.default_rng(1)
            drop_us = per_call_us(partial(dropper.drop, work, keypoints, drop_rng), number, repeat)
            albu_us = per_call_us(partial(dropper, image=image, keypoints=keypoints), number, repeat)
            other_us = per_call_us(partial(counterpart, image=image, keypoints=keypoints), number, repeat)
            row[name] = {
                "drop_us": drop_us,
                "albumentations_call_us": albu_us,
                "counterpart": type(counterpart).__name__,
                "counterpart_us": other_us,
                "drop_at_most_counterpart": drop_us <= other_us,
            }
        results[f"{height}x{width}"] = row
    return results


def pipeline_shares(ann_file: Path, image_dir: Path, samples: int) -> dict[str, Any]:
    """Share of TopDownDataset's per-sample time spent in each dropper (HRNet 256×192 training pipeline).

    ``StageTimer`` sums the time of each stage over ``samples`` random samples; the share is the dropper's
    sum over the whole sum (RandomErasing, p = 0.5, is a no-op on half the samples).
    """
    shares: dict[str, Any] = {}
    for dropper in (Cutout(), RandomErasing(), HideAndSeek(), GridMask()):
        dataset = TopDownDataset(
            ann_file,
            image_dir,
            train=True,
            codec=UDPHeatmapCodec((192, 256), (48, 64), 2.0),
            augmentation=TopDownAugmentation(),
            dropper=dropper,
        )
        dataset.stage_timer = StageTimer()
        for index in np.random.default_rng(0).integers(len(dataset), size=samples):
            dataset[int(index)]
        seconds = dataset.stage_timer.seconds
        share = seconds["dropper"] / sum(seconds.values())
        shares[type(dropper).__name__] = {
            "dropper_share": round(share, 4),
            "at_most_target": share <= TARGET_SHARE,
            "dropper_us": round(seconds["dropper"] / samples * 1e6, 1),
            "pipeline_us": round(sum(seconds.values()) / samples * 1e6, 1),
        }
    first = dataset.coco.imgs[int(dataset.records.image_id[0])]
    return {"image_wxh": f"{first['width']}x{first['height']}", "samples": samples, "droppers": shares}


def bench_pipelines(coco_dir: Path, synthpose_root: Path, samples: int) -> dict[str, Any]:
    """``pipeline_shares`` on SynthPose (256² JPEGs, cheap to decode) and on real COCO photos."""
    splits = SynthPoseSource(str(synthpose_root), num_train=200, num_val=20, seed=0).prepare()
    report: dict[str, Any] = {
        "target_share": TARGET_SHARE,
        "pipeline": "TopDownDataset train: decode, HRNet augmentation, UDP warp, dropper, UDP targets",
        "synthpose": pipeline_shares(splits.train_ann, splits.train_images, samples),
    }
    if (coco_dir / "test_coco.json").is_file():
        report["coco_photos"] = pipeline_shares(coco_dir / "test_coco.json", coco_dir, samples)
    else:
        report["coco_photos"] = f"skipped: no COCO fixture at {coco_dir} (pass --coco)"
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=200, help="calls per timing (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timings; the best is kept (default 5)")
    parser.add_argument("--coco", type=Path, default=DEFAULT_COCO, help="COCO fixture for the pipeline share")
    parser.add_argument(
        "--pipeline-samples", type=int, default=500, help="samples timed per pipeline (default 500)"
    )
    parser.add_argument("--synthpose-root", type=Path, default=REPO / "data" / "synthpose")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    report = {
        "setup": {
            "threads": 1,
            "number": args.number,
            "repeat": args.repeat,
            "image": "uint8 HWC, 3 channels, 17 keypoints",
            "drop": "in place on the same array (aidpose's sample pipeline)",
            "albumentations_call": "transform(image=..., keypoints=...), copies the image",
        },
        "per_call": bench_transforms(args.number, args.repeat),
        "topdown_pipeline": bench_pipelines(args.coco, args.synthpose_root, args.pipeline_samples),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
