"""Bottom-up speed on one core, one thread. Prints JSON.

1. Training sample pipeline: ``BottomUpDataset.__getitem__`` samples per wall-clock and per CPU second at
   512×512 input with 1/4 and 1/2 heatmaps (σ=2), tag indices and loss masks, HigherHRNet's augmentation
   and Hide-and-Seek, on SynthPose ``crowd`` images (512 px) and the real COCO photos of coco_mini.
2. Decoding one image with 30 people (17 joints, 256×256 merged maps = the 1/2 output of a 512 input,
   ~10% joints missing): NMS + top-k + grouping + filling + DARK-UDP refinement, in CPU ms, against a
   straightforward reference (per-candidate Python loops, HigherHRNet-style per-person refinement), with
   a check that both find the same people.

Usage: PYTHONPATH=src python scripts/bench_bottomup.py [--samples 300] [--repeats 20]
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
from scipy.optimize import linear_sum_assignment

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.codecs.grouping import COCO_JOINT_ORDER
from aidpose.codecs.udp_heatmap import gaussian_blur_heatmaps, udp_stride
from aidpose.data.bottomup import BottomUpDataset
from aidpose.data.sources import SynthPoseSource
from aidpose.geometry.augment import BottomUpAugmentation

REPO = Path(__file__).resolve().parents[1]


def pipeline(ann_file: Path, image_dir: Path, samples: int) -> dict[str, Any]:
    from aidpose.aid import HideAndSeek

    codec = AssociativeEmbeddingCodec(input_size=(512, 512), heatmap_sizes=[(128, 128), (256, 256)])
    dataset = BottomUpDataset(
        ann_file, image_dir, codec=codec, augmentation=BottomUpAugmentation(), dropper=HideAndSeek()
    )
    order = np.random.default_rng(0).integers(len(dataset), size=samples)
    for index in order[:20]:  # warm-up
        dataset[int(index)]
    wall, cpu = time.perf_counter(), time.process_time()
    people = 0
    for index in order:
        people += int(dataset[int(index)]["keypoint_indices"][:, :, 1].any(axis=1).sum())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "images": len(dataset),
        "mean_people_per_sample": round(people / samples, 2),
        "samples_per_s": round(samples / wall, 1),
        "samples_per_cpu_s": round(samples / cpu, 1),
    }


def crowd_maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merged heatmaps (17, 256, 256) and tags (17, 256, 256, 1) of 30 people on a 6×5 grid, with noise."""
    rng = np.random.default_rng(seed)
    people, joints = 30, 17
    cells = np.stack(np.meshgrid(np.arange(6), np.arange(5)), -1).reshape(-1, 2)
    keypoints = cells[:, None, :] * np.array([85.0, 100.0]) + rng.uniform(5, 80, (people, joints, 2))
    visible = np.full((people, joints), 2)
    visible[rng.random((people, joints)) < 0.1] = 0
    codec = AssociativeEmbeddingCodec(input_size=(512, 512), heatmap_sizes=[(256, 256)])
    heatmaps = codec.encode(keypoints, visible)["heatmaps"][0]
    heatmaps += rng.normal(0, 0.01, heatmaps.shape).astype(np.float32)
    xy = np.floor(keypoints / udp_stride((512, 512), (256, 256)) + 0.5).astype(int)
    tags = rng.normal(0, 0.05, (joints, 256, 256, 1)).astype(np.float32)
    for p in range(people):
        for k in range(joints):
            x, y = xy[p, k]
            tags[k, max(y - 4, 0) : y + 5, max(x - 4, 0) : x + 5, 0] += 2.0 * p
    return heatmaps, tags, keypoints, visible


def reference_decode(heatmaps: np.ndarray, tags: np.ndarray, codec: AssociativeEmbeddingCodec) -> np.ndarray:
    """The same decoding written plainly: Python loops over candidates, people, joints and pixels' maps."""
    num_joints, h, w = heatmaps.shape
    pooled = np.zeros_like(heatmaps)
    r = codec.nms_kernel // 2
    for k in range(num_joints):
        padded = np.pad(heatmaps[k], r, constant_values=-np.inf)
        pooled[k] = np.max(
            [padded[dy : dy + h, dx : dx + w] for dy in range(2 * r + 1) for dx in range(2 * r + 1)], axis=0
        )
    nms = np.where(pooled == heatmaps, heatmaps, 0)
    groups: list[dict[str, Any]] = []
    for k in COCO_JOINT_ORDER:
        flat = nms[k].ravel()
        top = np.argsort(-flat, kind="stable")[: codec.top_k]
        cands = [
            (i % w, i // w, flat[i], tags[k].reshape(h * w, -1)[i])
            for i in top
            if flat[i] > codec.detection_threshold
        ]
        if not cands:
            continue
        matched = [-1] * len(cands)
        if groups:
            pool = groups[: codec.max_people]
            cost = np.zeros((len(cands), len(pool)))
            dist = np.zeros_like(cost)
            for i, (_, _, val, tag) in enumerate(cands):
                for j, g in enumerate(pool):
                    dist[i, j] = np.linalg.norm(tag - np.mean(g["tags"], axis=0))
                    cost[i, j] = round(dist[i, j]) * 100 - val
            for i, j in zip(*linear_sum_assignment(cost), strict=True):
                if dist[i, j] < codec.tag_threshold:
                    matched[i] = j
        for i, (x, y, val, tag) in enumerate(cands):
            if matched[i] < 0:
                groups.append({"joints": np.zeros((num_joints, 3)), "tags": []})
                matched[i] = len(groups) - 1
            groups[matched[i]]["joints"][k] = (x, y, val)
            groups[matched[i]]["tags"].append(tag)
    groups.sort(key=lambda g: -g["joints"][:, 2].mean())
    blurred = gaussian_blur_heatmaps(heatmaps, codec.blur_kernel)
    out = []
    for g in groups[: codec.max_people]:
        joints, person_tag = g["joints"].copy(), np.mean(g["tags"], axis=0)
        for k in range(num_joints):
            if joints[k, 2] == 0:
                dist = np.linalg.norm(tags[k] - person_tag, axis=-1)
                y, x = np.unravel_index(np.argmax(heatmaps[k] - np.round(dist)), (h, w))
                if heatmaps[k, y, x] > 0:
                    joints[k] = (x, y, heatmaps[k, y, x])
        for k in range(num_joints):
            x, y = int(joints[k, 0]), int(joints[k, 1])

            def at(dx: int, dy: int, k: int = k, x: int = x, y: int = y) -> float:
                v = blurred[k, min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)]
                return float(np.log(np.clip(v, 1e-3, 50.0)))

            c = at(0, 0)
            gx, gy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
            dxx, dyy = at(1, 0) - 2 * c + at(-1, 0), at(0, 1) - 2 * c + at(0, -1)
            dxy = 0.5 * (at(1, 1) - at(1, 0) - at(0, 1) + 2 * c - at(-1, 0) - at(0, -1) + at(-1, -1))
            hess = np.array([[dxx, dxy], [dxy, dyy]]) + np.eye(2) * np.finfo(np.float32).eps
            if np.linalg.det(hess) != 0:
                joints[k, :2] -= np.linalg.solve(hess, [gx, gy])
        out.append(joints)
    return np.array(out, dtype=np.float32)


def cpu_ms(fn: Any, repeats: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.process_time() - start) / repeats


def decoding(repeats: int) -> dict[str, Any]:
    heatmaps, tags, keypoints, visible = crowd_maps()
    codec = AssociativeEmbeddingCodec(input_size=(512, 512), heatmap_sizes=[(256, 256)])
    to_input = (
        np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64) * udp_stride((512, 512), (256, 256))[:, None]
    )
    prediction = codec.decode((heatmaps, tags), to_input)
    reference = reference_decode(heatmaps, tags, codec)
    reference_xy = reference[..., :2] * udp_stride((512, 512), (256, 256))
    recovered = [
        float(
            np.abs(prediction.keypoints[:, visible[p] > 0, :2] - keypoints[p, visible[p] > 0])
            .max(axis=(1, 2))
            .min()
        )
        for p in range(len(keypoints))
    ]
    return {
        "people": len(keypoints),
        "heatmap_wxh": "256x256",
        "missing_joints": int((visible == 0).sum()),
        "people_found": len(prediction.keypoints),
        "max_error_input_px": round(max(recovered), 4),
        "same_as_reference": bool(
            reference.shape == prediction.keypoints.shape
            and np.allclose(reference_xy, prediction.keypoints[..., :2], atol=1e-3)
        ),
        "vectorised_cpu_ms": round(cpu_ms(lambda: codec.decode((heatmaps, tags), to_input), repeats), 2),
        "reference_loops_cpu_ms": round(
            cpu_ms(lambda: reference_decode(heatmaps, tags, codec), max(repeats // 5, 1)), 2
        ),
    }


def imread_ms(files: list[Path], repeats: int = 20) -> float:
    """CPU ms to decode one of the COCO photos with cv2: compare it across days to tell a slow machine from a
    slow pipeline (../shared/performance-notes.md measured ~1.4 ms on this kind of machine)."""
    cpu = time.process_time()
    for _ in range(repeats):
        for file in files:
            cv2.imread(str(file))
    return round((time.process_time() - cpu) / (repeats * len(files)) * 1e3, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--synthpose-root", type=Path, default=REPO / "data" / "synthpose")
    parser.add_argument("--coco-mini", type=Path, default=REPO / "tests" / "data" / "coco_mini")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cv2.ocl.setUseOpenCL(False)
    torch.set_num_threads(1)

    splits = SynthPoseSource(
        str(args.synthpose_root), num_train=100, num_val=1, seed=0, image_size=512, preset="crowd"
    ).prepare()
    results: dict[str, Any] = {
        "load_average_1min": round(os.getloadavg()[0], 2),  # > 1 on this machine: other jobs shared the CPU
        "pipeline_setting": "512x512 input, 128x128 + 256x256 heatmaps (sigma 2), tags, masks, "
        "scale 0.75-1.5, rotation ±30, translation ±40/200 px, flip 0.5, Hide-and-Seek, 1 thread",
        "pipeline_synthpose_crowd": pipeline(splits.train_ann, splits.train_images, args.samples),
    }
    if (args.coco_mini / "test_coco.json").is_file():
        results["pipeline_coco_mini"] = pipeline(
            args.coco_mini / "test_coco.json", args.coco_mini, args.samples
        )
    results["decode_30_people"] = decoding(args.repeats)
    results["machine_check_cv2_imread_coco_photo_ms"] = imread_ms(sorted(args.coco_mini.glob("*.jpg")))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
