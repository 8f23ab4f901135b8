"""Draw the same person crops under each AID dropper into one PNG.

    PYTHONPATH=src python scripts/show_droppers.py --out droppers.png [--coco DIR] [--synthpose-cache DIR]

Rows: the best-labelled persons of the COCO fixture (coco_mini) and of a small SynthPose set, cropped
as the top-down pipeline does (256×192, no augmentation). Columns: the original, Cutout, keypoint-
targeted Cutout, Hide-and-Seek, GridMask and Random Erasing at their default settings (Random Erasing
applied every time). Keypoints: green dot = visible and kept, red X = its pixel was dropped, yellow ring =
labelled but occluded in the photo. Captions count the visible keypoints each dropper hid.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2

from aidpose.aid import Cutout, GridMask, HideAndSeek, RandomErasing
from aidpose.aid.viz import PersonCrop, dropper_grid, person_crops

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


def collect_crops(coco_dir: Path | None, synthpose_cache: Path | None, per_source: int) -> list[PersonCrop]:
    crops: list[PersonCrop] = []
    if coco_dir is not None:
        crops += person_crops(coco_dir / "test_coco.json", coco_dir, max_crops=per_source)
    if synthpose_cache is not None:
        from aidpose.data.synthpose import ensure_synthpose

        root = ensure_synthpose(synthpose_cache, num_train=0, num_val=8, seed=0)
        crops += person_crops(
            root / "annotations" / "person_keypoints_val.json", root / "images" / "val", max_crops=per_source
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
    args = parser.parse_args(argv)
    coco = None if args.no_coco else args.coco
    if coco is not None and not (coco / "test_coco.json").is_file():
        parser.error(f"--coco {coco}: no test_coco.json there (pass the coco_mini folder or --no-coco)")
    crops = collect_crops(coco, None if args.no_synthpose else args.synthpose_cache, args.crops)
    if not crops:
        parser.error("no crops: every source is disabled or has no person with 8 labelled keypoints")
    grid = dropper_grid(crops, droppers(), seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {args.out}")
    print(f"wrote {args.out} ({len(crops)} crops × {len(droppers())} columns)")


if __name__ == "__main__":
    main()
