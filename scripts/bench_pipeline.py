"""Top-down training sample pipeline throughput on one core, one thread. Prints JSON.

For SynthPose and the real COCO photos of tests/data/coco_mini: training samples per second (per
wall-clock and per CPU second) of ``TopDownDataset.__getitem__`` at 256×192 input, 64×48 heatmaps, σ=2,
with flip, half-body, scale and rotation on and an AID dropper (Cutout by default), and the share of each
stage (decode, augmentation sampling, warp, dropper, target, rest). Also one DataLoader worker feeding
batches of 32 to this process.

Usage: PYTHONPATH=src python scripts/bench_pipeline.py [--samples 2000] [--dropper cutout|none]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.pipeline import StageTimer
from aidpose.data.sources import SynthPoseSource
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.augment import TopDownAugmentation

REPO = Path(__file__).resolve().parents[1]
STAGES = ("decode", "augmentation", "warp", "dropper", "target", "rest")


def make_dropper(name: str) -> Any | None:
    if name == "none":
        return None
    from aidpose.aid import Cutout

    return Cutout()  # AID's top-down default: one ellipse, semi-axes U(0.2, 0.4) × width, p = 1


def samples_per_second(dataset: TopDownDataset, order: np.ndarray) -> tuple[float, float]:
    """Samples per wall-clock second and per CPU second of this process (robust to a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for index in order:
        dataset[int(index)]
    return len(order) / (time.perf_counter() - wall), len(order) / (time.process_time() - cpu)


def stage_shares(dataset: TopDownDataset, order: np.ndarray) -> dict[str, Any]:
    dataset.stage_timer = StageTimer()
    for index in order:
        dataset[int(index)]
    seconds = dataset.stage_timer.seconds
    dataset.stage_timer = None
    total = sum(seconds.values())
    return {
        "us_per_sample": {s: round(1e6 * seconds[s] / len(order), 1) for s in STAGES},
        "share": {s: round(seconds[s] / total, 3) for s in STAGES},
    }


def loader_samples_per_second(dataset: TopDownDataset, samples: int, batch_size: int = 32) -> float:
    sampler = RandomSampler(dataset, replacement=True, num_samples=samples)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=1, drop_last=True)
    batches = iter(loader)
    next(batches)  # worker start-up
    start = time.perf_counter()
    seen = sum(len(batch["image"]) for batch in batches)
    return seen / (time.perf_counter() - start)


def bench(ann_file: Path, image_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dataset = TopDownDataset(
        ann_file,
        image_dir,
        train=True,
        codec=UDPHeatmapCodec((192, 256), (48, 64), 2.0),
        augmentation=TopDownAugmentation(),
        dropper=make_dropper(args.dropper),
    )
    order = np.random.default_rng(0).integers(len(dataset), size=args.samples)
    samples_per_second(dataset, order[:50])  # warm-up
    first = dataset.coco.imgs[int(dataset.records.image_id[0])]
    per_wall_s, per_cpu_s = samples_per_second(dataset, order)
    return {
        "instances": len(dataset),
        "image_wxh": f"{first['width']}x{first['height']}",
        "samples_per_s": round(per_wall_s, 1),
        "samples_per_cpu_s": round(per_cpu_s, 1),
        **stage_shares(dataset, order),
        "loader_1_worker_samples_per_s": round(loader_samples_per_second(dataset, args.samples), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dropper", choices=("cutout", "none"), default="cutout")
    parser.add_argument("--synthpose-root", type=Path, default=REPO / "data" / "synthpose")
    parser.add_argument("--coco-mini", type=Path, default=REPO / "tests" / "data" / "coco_mini")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cv2.ocl.setUseOpenCL(False)
    torch.set_num_threads(1)

    splits = SynthPoseSource(str(args.synthpose_root), num_train=200, num_val=20, seed=0).prepare()
    results: dict[str, Any] = {
        "setting": {
            "input_wxh": "192x256",
            "heatmap_wxh": "48x64",
            "sigma": 2.0,
            "augmentation": "flip 0.5, half-body 0.3, scale ±0.35, rotation ±90 (p 0.6)",
            "dropper": args.dropper,
            "threads": 1,
            "samples": args.samples,
        },
        "synthpose": bench(splits.train_ann, splits.train_images, args),
    }
    if (args.coco_mini / "test_coco.json").is_file():
        results["coco_mini"] = bench(args.coco_mini / "test_coco.json", args.coco_mini, args)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
