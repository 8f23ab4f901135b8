"""Top-down training sample pipeline throughput on one core, one thread. Prints JSON.

For SynthPose and the real COCO photos of tests/data/coco_mini: training samples per second of
``TopDownDataset.__getitem__`` at 256×192 input, 64×48 heatmaps, σ=2, with flip, half-body, scale and rotation on
and an AID dropper (Cutout by default), ``loader.decode`` as given (scaled by default), and:

- ``fraction_of_decode_bound``: the pipeline's samples/s over the samples/s of decoding the same samples' JPEGs in
  full and nothing else, measured in alternating chunks in this run (median of the rounds' ratios);
- ``scaled_decode_share``: the share of samples whose crop allowed a reduced decode, and
  ``scaled_samples_over_decode_bound``: their own rate over that bound;
- the time per stage (decode, augmentation sampling, warp, dropper, target, rest), and DataLoader throughput
  with 1 and 2 worker processes feeding batches of 32 to this process;
- ``cached``: the same pipeline on the COCO photos with the images decoded once and kept (``loader.cache=memory``),
  its samples/s and time per stage.

Usage: PYTHONPATH=src python scripts/bench_pipeline.py [--samples 2000] [--dropper cutout|none] [--decode full]
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
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.images import decode_file
from aidpose.data.pipeline import StageTimer
from aidpose.data.sources import SynthPoseSource
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.augment import TopDownAugmentation

REPO = Path(__file__).resolve().parents[1]
STAGES = ("decode", "augmentation", "warp", "dropper", "target", "rest")
ROUNDS = 5


def make_dropper(name: str) -> Any | None:
    if name == "none":
        return None
    from aidpose.aid import Cutout

    return Cutout()  # AID's top-down default: one ellipse, semi-axes U(0.2, 0.4) × width, p = 1


def make_dataset(
    ann_file: Path, image_dir: Path, args: argparse.Namespace, cache: str = "none"
) -> TopDownDataset:
    return TopDownDataset(
        ann_file,
        image_dir,
        train=True,
        codec=UDPHeatmapCodec((192, 256), (48, 64), 2.0),
        augmentation=TopDownAugmentation(),
        dropper=make_dropper(args.dropper),
        decode=args.decode,
        cache=ImageCacheSettings(cache),
    )


def timed_samples(dataset: TopDownDataset, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of each sample and the factor its image was decoded at."""
    seconds, factors = np.empty(len(order)), np.empty(len(order), dtype=np.int64)
    decoded = dataset.image_reader.decoded
    for n, index in enumerate(order):
        before = decoded.copy()
        start = time.perf_counter()
        dataset[int(index)]
        seconds[n] = time.perf_counter() - start
        factors[n] = next(iter((decoded - before).elements()))
    return seconds, factors


def decode_seconds(dataset: TopDownDataset, order: np.ndarray) -> float:
    """Seconds to decode, in full and nothing else, the image file of each sample of ``order``."""
    files = dataset.records.file
    start = time.perf_counter()
    for index in order:
        decode_file(files[int(index)])
    return time.perf_counter() - start


def against_decode_bound(dataset: TopDownDataset, order: np.ndarray) -> dict[str, Any]:
    """The pipeline and the full-decode bound on the same samples, in alternating chunks (ROUNDS of each)."""
    ratios, pipeline, bound, scaled_ratios, all_factors = [], [], [], [], []
    for chunk in np.array_split(order, ROUNDS):
        seconds, factors = timed_samples(dataset, chunk)
        decode_s = decode_seconds(dataset, chunk)
        pipeline.append(len(chunk) / seconds.sum())
        bound.append(len(chunk) / decode_s)
        ratios.append(pipeline[-1] / bound[-1])
        scaled = factors > 1
        if scaled.any():  # their own rate over the bound of the same chunk
            scaled_ratios.append(scaled.sum() / seconds[scaled].sum() / bound[-1])
        all_factors.append(factors)
    factors = np.concatenate(all_factors)
    return {
        "samples_per_s": round(float(np.median(pipeline)), 1),
        "full_decode_only_samples_per_s": round(float(np.median(bound)), 1),
        "fraction_of_decode_bound": round(float(np.median(ratios)), 3),
        "scaled_decode_share": round(float((factors > 1).mean()), 3),
        "decode_factors": {str(f): int((factors == f).sum()) for f in np.unique(factors)},
        "scaled_samples_over_decode_bound": round(float(np.median(scaled_ratios)), 3)
        if scaled_ratios
        else None,
    }


def stage_times(dataset: TopDownDataset, order: np.ndarray) -> dict[str, Any]:
    dataset.stage_timer = StageTimer()
    start = time.perf_counter()
    for index in order:
        dataset[int(index)]
    wall = time.perf_counter() - start
    seconds = dataset.stage_timer.seconds
    dataset.stage_timer = None
    total = sum(seconds.values())
    return {
        "samples_per_s": round(len(order) / wall, 1),
        "us_per_sample": {s: round(1e6 * seconds[s] / len(order), 1) for s in STAGES},
        "share": {s: round(seconds[s] / total, 3) for s in STAGES},
    }


def loader_samples_per_second(
    dataset: TopDownDataset, samples: int, workers: int, batch_size: int = 32
) -> float:
    sampler = RandomSampler(dataset, replacement=True, num_samples=samples)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True)
    batches = iter(loader)
    for _ in range(workers):  # worker start-up: each worker's first batch
        next(batches)
    start = time.perf_counter()
    seen = sum(len(batch["image"]) for batch in batches)
    return seen / (time.perf_counter() - start)


def bench(ann_file: Path, image_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dataset = make_dataset(ann_file, image_dir, args)
    order = np.random.default_rng(0).integers(len(dataset), size=args.samples)
    timed_samples(dataset, order[:50])  # warm-up
    first = dataset.coco.imgs[int(dataset.records.image_id[0])]
    return {
        "instances": len(dataset),
        "image_wxh": f"{first['width']}x{first['height']}",
        **against_decode_bound(dataset, order),
        "stages": stage_times(dataset, order),
        "loader_samples_per_s": {
            str(w): round(loader_samples_per_second(dataset, args.samples, w), 1) for w in (1, 2)
        },
    }


def bench_cached(ann_file: Path, image_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dataset = make_dataset(ann_file, image_dir, args, cache="memory")
    order = np.random.default_rng(1).integers(len(dataset), size=args.samples)
    stage_times(dataset, order[:50])  # warm-up
    return {"photos": "coco_mini", **stage_times(dataset, order)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dropper", choices=("cutout", "none"), default="cutout")
    parser.add_argument("--decode", choices=("full", "scaled"), default="scaled")
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
            "decode": args.decode,
            "threads": 1,
            "samples": args.samples,
        },
        "synthpose": bench(splits.train_ann, splits.train_images, args),
    }
    if (args.coco_mini / "test_coco.json").is_file():
        results["coco_mini"] = bench(args.coco_mini / "test_coco.json", args.coco_mini, args)
        results["cached"] = bench_cached(args.coco_mini / "test_coco.json", args.coco_mini, args)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
