"""Draw the same person crops under each AID dropper into one PNG and measure the share each drops.

    PYTHONPATH=src python scripts/show_droppers.py --out droppers.png [--coco DIR] [--synthpose-cache DIR]

Rows: the best-labelled persons of the COCO fixture (coco_mini) and of a small SynthPose set, cropped
as the top-down pipeline does (no augmentation), first at 256×192, then the same persons at 128×96
(same seeds: the same pattern relative to the crop). Columns: the original, Cutout, keypoint-targeted
Cutout, Hide-and-Seek, GridMask and Random Erasing at their default settings (Random Erasing applied
every time). Keypoints: green dot = visible and kept, red X = its pixel was dropped, yellow ring = labelled but occluded in the photo. Captions count the
visible keypoints each dropper hid.

Printed as JSON: each dropper's dropped area share (mean and std over ``--draws`` crops) at 128×96 and
256×192 — the same at both sizes, as every dropper's strength is relative to the crop — and, for contrast,
HaS and GridMask with the paper's pixel values applied as pixels at 128×96 (what the relative parameters
replace).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from aidpose.aid import Cutout, GridMask, HideAndSeek, RandomErasing, dropped_area_share
from aidpose.drawing import PersonCrop, dropper_grid, labelled_crops

DEFAULT_COCO = Path(__file__).resolve().parents[1] / "tests" / "data" / "coco_mini"


def droppers() -> dict:
    return {
        "original": None,
        "Cutout": Cutout(),
        "Cutout@keypoint": Cutout(center="keypoint"),
        "HideAndSeek": HideAndSeek(),
        "GridMask": GridMask(),
        "RandomErasing": RandomErasing(p=1.0),
    }


SIZES = {"256x192": (192, 256), "128x96": (96, 128)}  # name → input size (width, height)


def pixel_valued(width: int) -> dict:
    """HaS and GridMask with the paper's pixel values used as pixels on a crop of this width."""
    return {
        "HideAndSeek": HideAndSeek(cell_sizes=[px / width for px in (0, 16, 32, 44)]),
        "GridMask": GridMask(period_range=(96 / width, 224 / width)),
    }


def area_shares(draws: int, seed: int) -> dict:
    """Dropped area share (mean, std) of each default dropper per crop size, and of the pixel-valued ones."""
    shares = {
        name: {size: dropped_area_share(dropper, h, w, draws, seed) for size, (w, h) in SIZES.items()}
        for name, dropper in droppers().items()
        if dropper is not None and name != "Cutout@keypoint"  # needs keypoints to target
    }
    width, height = SIZES["128x96"]
    pixels = {
        name: dropped_area_share(d, height, width, draws, seed) for name, d in pixel_valued(width).items()
    }
    return {"relative": shares, f"pixel_values_at_{width}px_width": pixels}


def collect_crops(
    coco_dir: Path | None, synthpose_cache: Path | None, per_source: int, input_size: tuple[int, int]
) -> list[PersonCrop]:
    crops: list[PersonCrop] = []
    if coco_dir is not None:
        crops += labelled_crops(
            coco_dir / "test_coco.json", coco_dir, input_size=input_size, max_crops=per_source
        )
    if synthpose_cache is not None:
        from aidpose.data.synthpose import ensure_synthpose

        root = ensure_synthpose(synthpose_cache, num_train=0, num_val=8, seed=0)
        crops += labelled_crops(
            root / "annotations" / "person_keypoints_val.json",
            root / "images" / "val",
            input_size=input_size,
            max_crops=per_source,
        )
    return crops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument(
        "--coco", type=Path, default=DEFAULT_COCO, help="COCO fixture folder (test_coco.json)"
    )
    parser.add_argument("--no-coco", action="store_true", help="leave out the COCO crops")
    parser.add_argument(
        "--synthpose-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "aidpose-synthpose",
        help="where a small SynthPose set is generated (cached)",
    )
    parser.add_argument("--no-synthpose", action="store_true", help="leave out the SynthPose crops")
    parser.add_argument("--crops", type=int, default=3, help="crops per source (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=5000, help="crops per dropper and size for the shares")
    args = parser.parse_args(argv)
    coco = None if args.no_coco else args.coco
    if coco is not None and not (coco / "test_coco.json").is_file():
        parser.error(f"--coco {coco}: no test_coco.json there (pass the coco_mini folder or --no-coco)")
    synthpose = None if args.no_synthpose else args.synthpose_cache
    grids = []
    for size in SIZES.values():
        crops = collect_crops(coco, synthpose, args.crops, size)
        if not crops:
            parser.error("no crops: every source is disabled or has no person with 8 labelled keypoints")
        grids.append(dropper_grid(crops, droppers(), seed=args.seed))
    width = max(grid.shape[1] for grid in grids)
    figure = np.vstack(
        [np.pad(g, ((0, 8), (0, width - g.shape[1]), (0, 0)), constant_values=255) for g in grids]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {args.out}")
    report = {
        "figure": str(args.out),
        "crops_per_size": len(crops),
        "columns": len(droppers()),
        "sizes": list(SIZES),
        "draws": args.draws,
        "seed": args.seed,
        "dropped_area_share": area_shares(args.draws, args.seed),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
