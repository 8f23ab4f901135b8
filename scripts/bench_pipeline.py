"""Top-down training sample pipeline throughput on one core, one thread. Prints JSON.

For SynthPose and the real COCO photos of tests/data/coco_mini: training samples per second of
``TopDownDataset.__getitem__`` at 256×192 input, 64×48 heatmaps, σ=2, with flip, half-body, scale and rotation on
and an AID dropper (Cutout by default), ``loader.decode`` as given (scaled by default), and:

- ``fraction_of_decode_bound``: the pipeline's samples/s over the samples/s of decoding the same samples' JPEGs in
  full and nothing else, measured in alternating chunks in this run (median of the rounds' ratios);
- ``scaled_decode_share``: the share of samples whose crop allowed a reduced decode, and
  ``scaled_samples_over_decode_bound``: their own rate over that bound;
- ``decode_and_warp_only_fraction``: the same ratio for decoding each sample's JPEG in full and warping it (the
  bare ``cv2.warpAffine`` of the sample's crop, nothing else): the ceiling of any pipeline that decodes and warps
  every sample on this machine;
- the time per stage (decode, augmentation sampling, warp, dropper, target, rest), and DataLoader throughput
  with 1 and 2 worker processes feeding batches of 32 to this process;
- ``cached``: the same pipeline on the COCO photos with the images decoded once and kept (``loader.cache=memory``),
  its samples/s and time per stage, and ``plain_reference_samples_per_s``: a plain numpy/cv2 loop doing the same
  work on the same images (:class:`PlainReference`), in alternating chunks with aidpose in this run, so that
  ``over_plain_reference`` compares the two on the same machine state (this VM's speed varies by ±30%).

Usage: PYTHONPATH=src python scripts/bench_pipeline.py [--samples 2000] [--dropper cutout|none] [--decode full]
"""

from __future__ import annotations

import argparse
import json
import math
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
from aidpose.data.keypoints import get_layout
from aidpose.data.pipeline import SampleKey, StageTimer
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


class PlainReference:
    """The cached benchmark's work written as one plain function, as a script without a framework would: one
    global generator, the HRNet augmentation (half-body 0.3, scale ±0.35, rotation p 0.6 ±90, flip 0.5), the UDP
    warp in Python floats, one cv2 warp and an RGB swap, the joints moved and swapped, one elliptical Cutout
    hole (semi-axes U(0.2, 0.4) × width, fill 0), UDP Gaussian heatmaps (σ=2, 3σ window, mmpose's validity
    test) and the crop's inverse matrix. aidpose does more per sample: a generator per (seed, epoch, index),
    input checks, the dropper's statistics and the items' ids."""

    def __init__(self, dataset: TopDownDataset) -> None:
        self.images = [dataset.image_reader.read(dataset.files, i).image for i in range(len(dataset))]
        self.keypoints = dataset.records.keypoints
        self.centers, self.scales = dataset.centers, dataset.scales
        layout = get_layout("coco")
        self.upper = np.isin(np.arange(layout.num_keypoints), layout.upper_body_ids)
        self.flip_index = layout.flip_index
        self.rng = np.random.default_rng(0)
        self.grid = np.arange(64, dtype=np.float64)

    def __call__(self, index: int) -> dict[str, np.ndarray]:
        rng, kp = self.rng, self.keypoints[index]
        center, scale = self.centers[index], self.scales[index]
        labelled = kp[:, 2] > 0
        if labelled.sum() > 8 and rng.random() < 0.3:  # half-body box of the preferred (else other) half
            upper, lower = kp[labelled & self.upper, :2], kp[labelled & ~self.upper, :2]
            first, second = (upper, lower) if rng.random() < 0.5 else (lower, upper)
            chosen = first if len(first) > 2 else second if len(second) > 2 else upper
            if len(chosen) >= 2 and (size := chosen.max(0) - chosen.min(0)).any():
                w, h = size
                center = chosen.mean(0)
                scale = np.array([w, w / 0.75] if w > 0.75 * h else [h * 0.75, h]) * 1.5
        factor = min(max(1 + 0.35 * rng.standard_normal(), 0.65), 1.35)
        rotation = min(max(45 * rng.standard_normal(), -90), 90) if rng.random() < 0.6 else 0.0
        flip = rng.random() < 0.5
        cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        sx, sy = 191 / (scale[0] * factor), 255 / (scale[1] * factor)
        a00, a01, a10, a11 = sx * cos, -sx * sin, sy * sin, sy * cos
        t0, t1 = 95.5 - (a00 * center[0] + a01 * center[1]), 127.5 - (a10 * center[0] + a11 * center[1])
        if flip:
            a00, a01, t0 = -a00, -a01, 191 - t0
        matrix = np.array([[a00, a01, t0], [a10, a11, t1]], dtype=np.float32)
        crop = cv2.cvtColor(cv2.warpAffine(self.images[index], matrix, (192, 256)), cv2.COLOR_BGR2RGB)
        xy = kp[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        weights = labelled.astype(np.float32)
        if flip:
            xy, weights = xy[self.flip_index], weights[self.flip_index]
        cx, cy, ax, ay = rng.random(4) * (192, 256, 0.2 * 192, 0.2 * 192) + (-0.5, -0.5, 0.2 * 192, 0.2 * 192)
        r0, r1 = max(0, math.ceil(cy - ay)), min(255, math.floor(cy + ay))
        c0, c1 = max(0, math.ceil(cx - ax)), min(191, math.floor(cx + ax))
        if r0 <= r1 and c0 <= c1:
            across = np.square(np.arange(c0, c1 + 1) - cx)
            down = np.square(np.arange(r0, r1 + 1) - cy)
            crop[r0 : r1 + 1, c0 : c1 + 1][across <= ax * ax * (1 - down / (ay * ay))[:, None]] = 0
        mu = xy / (191 / 47, 255 / 63)
        centre = np.trunc(mu + 0.5)
        lo, hi = np.trunc(centre - 6), np.trunc(centre + 7)
        weights *= (lo < (48, 64)).all(1) & (hi >= 0).all(1)
        d = self.grid - mu[:, :, None]
        inside = (self.grid >= lo[:, :, None]) & (self.grid < hi[:, :, None])
        profiles = (np.exp(d * d * -0.125) * inside).astype(np.float32)
        profiles[:, 1] *= weights[:, None]
        return {
            "image": crop,
            "heatmaps": np.einsum("ki,kj->kij", profiles[:, 1], profiles[:, 0, :48]),
            "keypoint_weights": weights,
            "inv_affine": cv2.invertAffineTransform(matrix.astype(np.float64)).astype(np.float32),
        }


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


def decode_and_warp_seconds(dataset: TopDownDataset, order: np.ndarray) -> float:
    """Seconds to decode each sample's JPEG in full and warp its crop (the sample's own matrix), nothing else."""
    files, size = dataset.records.file, dataset.input_size
    matrices = [dataset.sample(int(index)).matrix for index in order]  # the keys timed_samples reads
    start = time.perf_counter()
    for index, matrix in zip(order, matrices, strict=True):
        image, _ = decode_file(files[int(index)])
        cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return time.perf_counter() - start


def against_decode_bound(dataset: TopDownDataset, order: np.ndarray) -> dict[str, Any]:
    """The pipeline, the full-decode bound and decode + warp alone on the same samples, in alternating chunks
    (ROUNDS of each)."""
    ratios, pipeline, bound, scaled_ratios, all_factors, ceilings = [], [], [], [], [], []
    for chunk in np.array_split(order, ROUNDS):
        seconds, factors = timed_samples(dataset, chunk)
        decode_s = decode_seconds(dataset, chunk)
        pipeline.append(len(chunk) / seconds.sum())
        bound.append(len(chunk) / decode_s)
        ratios.append(pipeline[-1] / bound[-1])
        ceilings.append(decode_s / decode_and_warp_seconds(dataset, chunk))
        scaled = factors > 1
        if scaled.any():  # their own rate over the bound of the same chunk
            scaled_ratios.append(scaled.sum() / seconds[scaled].sum() / bound[-1])
        all_factors.append(factors)
    factors = np.concatenate(all_factors)
    return {
        "samples_per_s": round(float(np.median(pipeline)), 1),
        "full_decode_only_samples_per_s": round(float(np.median(bound)), 1),
        "fraction_of_decode_bound": round(float(np.median(ratios)), 3),
        "decode_and_warp_only_fraction": round(float(np.median(ceilings)), 3),
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
    loader = DataLoader(
        dataset, batch_size, sampler=sampler, num_workers=workers, drop_last=True, collate_fn=dataset.collate
    )
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


def against_plain_reference(dataset: TopDownDataset, order: np.ndarray) -> dict[str, Any]:
    """aidpose's cached pipeline and :class:`PlainReference` on the same samples, in alternating chunks."""
    plain = PlainReference(dataset)
    ours, theirs = [], []
    for chunk in np.array_split(order, ROUNDS):
        start = time.perf_counter()
        for n, index in enumerate(chunk):
            dataset[SampleKey(int(index), 0, n)]
        ours.append(len(chunk) / (time.perf_counter() - start))
        start = time.perf_counter()
        for index in chunk:
            plain(int(index))
        theirs.append(len(chunk) / (time.perf_counter() - start))
    return {
        "interleaved_samples_per_s": round(float(np.median(ours)), 1),
        "plain_reference_samples_per_s": round(float(np.median(theirs)), 1),
        "over_plain_reference": round(float(np.median(np.divide(ours, theirs))), 3),
    }


def bench_cached(ann_file: Path, image_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dataset = make_dataset(ann_file, image_dir, args, cache="memory")
    order = np.random.default_rng(1).integers(len(dataset), size=args.samples)
    stage_times(dataset, order[:50])  # warm-up
    return {"photos": "coco_mini", **stage_times(dataset, order), **against_plain_reference(dataset, order)}


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
