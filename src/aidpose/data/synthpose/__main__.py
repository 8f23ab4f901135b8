"""CLI: ``python -m aidpose.data.synthpose --out DIR --num-train N --num-val M --seed S [--preview P]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aidpose.data.synthpose.dataset_statistics import dataset_statistics
from aidpose.data.synthpose.generate import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, generate_synthpose, prepare_folder
from aidpose.data.synthpose.preview import write_preview
from aidpose.data.synthpose.scene import PRESETS


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _image_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not MIN_IMAGE_SIZE <= value <= MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(
            f"expected a size in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {value}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aidpose.data.synthpose",
        description="Generate SynthPose, a procedural COCO-format person keypoint dataset with occlusion.",
    )
    parser.add_argument("--out", required=True, help="output folder (gets images/ and annotations/)")
    parser.add_argument("--num-train", type=_non_negative, required=True, help="number of training images")
    parser.add_argument("--num-val", type=_non_negative, required=True, help="number of validation images")
    parser.add_argument(
        "--seed", type=_non_negative, required=True, help="random seed (same seed, same bytes)"
    )
    parser.add_argument(
        "--image-size", type=_image_size, default=256, help="square image side in pixels (default 256)"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="scene statistics")
    parser.add_argument(
        "--preview", metavar="FILE.png", help="also write a PNG grid of val (or train) samples"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preview and not args.preview.lower().endswith(".png"):
        parser.error(f"--preview: expected a .png file name, got {args.preview!r}")
    if args.preview and args.num_train + args.num_val == 0:
        parser.error("--preview: needs at least one image (--num-train or --num-val above 0)")
    try:
        prepare_folder(Path(args.out))
    except ValueError as err:
        parser.error(f"--out: {err}")
    start = time.perf_counter()
    out = generate_synthpose(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        image_size=args.image_size,
        preset=args.preset,
    )
    seconds = time.perf_counter() - start
    report = {"out": str(out), "seconds": round(seconds, 2)}
    for split in ("train", "val"):
        report[split] = dataset_statistics(out / "annotations" / f"person_keypoints_{split}.json")
    if args.preview:
        split = "val" if args.num_val else "train"
        report["preview"] = str(write_preview(out, args.preview, split=split))
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
