"""``aidpose-eval ANN_FILE RESULTS_JSON [--dataset coco|crowdpose] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from aidpose.evaluation.api import DATASETS, evaluate_results, format_metrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aidpose-eval", description="COCO / CrowdPose keypoint metrics of a COCO keypoint results file."
    )
    parser.add_argument("ann_file", help="ground-truth annotation JSON (COCO format)")
    parser.add_argument(
        "results", help="keypoint results JSON (list of image_id, category_id, keypoints, score)"
    )
    parser.add_argument(
        "--dataset", choices=DATASETS, default="coco", help="evaluation protocol (default: coco)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the metrics as one JSON object (-1 where undefined, as pycocotools)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        metrics = evaluate_results(args.ann_file, args.results, dataset=args.dataset)
    except (OSError, ValueError) as err:
        print(f"aidpose-eval: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_metrics(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
