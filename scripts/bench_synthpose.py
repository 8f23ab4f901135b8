"""Generation speed of SynthPose on one core: prints JSON (seconds, images/s).

    PYTHONPATH=src .venv/bin/python scripts/bench_synthpose.py [--num-train 2000 --num-val 500]

Pins the process to a single CPU and one OpenCV thread; writes into a temporary folder that is removed.
Target: 2,000 + 500 images of 256×256 in at most 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import cv2

from aidpose.data.synthpose import generate_synthpose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-val", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="synthpose-bench-") as tmp:
        start = time.perf_counter()
        generate_synthpose(
            tmp,
            num_train=args.num_train,
            num_val=args.num_val,
            seed=args.seed,
            image_size=args.image_size,
            preset=args.preset,
        )
        seconds = time.perf_counter() - start
    images = args.num_train + args.num_val
    report = {
        "images": images,
        "image_size": args.image_size,
        "preset": args.preset,
        "cores": 1,
        "seconds": round(seconds, 2),
        "images_per_s": round(images / seconds, 1),
        "ms_per_image": round(1000 * seconds / max(images, 1), 2),
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
