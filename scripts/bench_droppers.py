"""Time the AID droppers next to albumentations' own dropouts, and AID's share of the top-down pipeline.

    PYTHONPATH=src python scripts/bench_droppers.py [--number 200] [--repeat 5] [--coco DIR]

Prints one JSON document: µs per call of each dropper's ``drop`` (in place, as aidpose's sample pipeline
calls it) and of its albumentations ``__call__`` (copies the image), on a 256×192×3 uint8 crop and a
512×512×3 uint8 image, next to the albumentations transform with comparable holes. Times are the best of
``--repeat`` means over ``--number`` calls, on one thread. With ``TopDownDataset`` available and the COCO
fixture present, also the share of the whole training sample pipeline spent in the dropper.
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

SIZES = ((256, 192), (512, 512))  # (height, width)
DEFAULT_COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_mini"


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


def bench_pipeline(coco_dir: Path, passes: int) -> dict[str, Any]:
    """Share of TopDownDataset's per-sample time spent in each dropper (HRNet 256×192 training pipeline).

    Every sample is timed on its own (``StageTimer``); the share is the median dropper time over the
    median whole-sample time, which keeps the other processes of a shared machine out of the figure.
    """
    try:
        from aidpose.data.topdown import StageTimer, TopDownDataset
        from aidpose.transforms.augment import TopDownAugmentation
    except ImportError as error:
        return {"status": f"pending: aidpose.data.topdown is not importable ({error})"}
    if not (coco_dir / "test_coco.json").is_file():
        return {"status": f"skipped: no COCO fixture at {coco_dir} (pass --coco)"}
    shares: dict[str, Any] = {}
    for dropper in (Cutout(), RandomErasing(), HideAndSeek(), GridMask()):
        dataset = TopDownDataset(
            coco_dir / "test_coco.json",
            coco_dir,
            train=True,
            input_size=(192, 256),
            heatmap_size=(48, 64),
            sigma=2.0,
            augmentation=TopDownAugmentation(),
            dropper=dropper,
        )
        dropper_us, total_us = [], []
        for _ in range(passes):
            for index in range(len(dataset)):
                dataset.stage_timer = StageTimer()
                dataset[index]
                seconds = dataset.stage_timer.seconds
                dropper_us.append(seconds["dropper"] * 1e6)
                total_us.append(sum(seconds.values()) * 1e6)
        shares[type(dropper).__name__] = {
            "dropper_share": round(float(np.median(dropper_us) / np.median(total_us)), 4),
            "dropper_us_median": round(float(np.median(dropper_us)), 1),
            "pipeline_us_median": round(float(np.median(total_us)), 1),
            "samples": len(total_us),
        }
    return {
        "status": "measured",
        "target_share": 0.05,
        "pipeline": "TopDownDataset train: JPEG decode, HRNet augmentation, UDP warp, dropper, UDP targets",
        "droppers": shares,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=200, help="calls per timing (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timings; the best is kept (default 5)")
    parser.add_argument("--coco", type=Path, default=DEFAULT_COCO, help="COCO fixture for the pipeline share")
    parser.add_argument(
        "--pipeline-passes", type=int, default=20, help="passes over the fixture (default 20)"
    )
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
        "topdown_pipeline": bench_pipeline(args.coco, args.pipeline_passes),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
