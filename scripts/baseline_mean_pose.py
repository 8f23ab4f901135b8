"""Mean-pose baseline on SynthPose: the training set's mean box-normalised pose in each val GT box.

    PYTHONPATH=src .venv/bin/python scripts/baseline_mean_pose.py --data DIR
    PYTHONPATH=src .venv/bin/python scripts/baseline_mean_pose.py            # the default training dataset

Without ``--data`` the dataset of the default training config (2,000 + 500 images, seed 0) is generated
on first use into ``--cache-root`` (default ``data/synthpose``) and reused. Prints the COCO metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aidpose.data.synthpose import ensure_synthpose
from aidpose.data.synthpose.baseline import mean_pose_results
from aidpose.evaluation import evaluate_results

KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="a generated SynthPose folder (images/, annotations/)")
    parser.add_argument(
        "--cache-root", type=Path, default=Path("data/synthpose"), help="cache without --data"
    )
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-val", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--preset", default="default")
    args = parser.parse_args(argv)
    if args.data is None:
        try:
            data = ensure_synthpose(
                args.cache_root,
                num_train=args.num_train,
                num_val=args.num_val,
                seed=args.seed,
                image_size=args.image_size,
                preset=args.preset,
            )
        except ValueError as err:
            parser.error(str(err))
    else:
        data = args.data
    files = {split: data / "annotations" / f"person_keypoints_{split}.json" for split in ("train", "val")}
    for split, path in files.items():
        if not path.is_file():
            parser.error(f"--data: {path} not found ({split} annotations of a SynthPose folder)")
    train = json.loads(files["train"].read_text())
    val = json.loads(files["val"].read_text())
    metrics = evaluate_results(val, mean_pose_results(train["annotations"], val["annotations"]))
    report = {key: round(100 * float(metrics[key]), 2) for key in KEYS}
    report["data"] = str(data)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
