"""Benchmark aidpose.evaluation against pycocotools on a COCO-val-sized synthetic keypoint case.

Builds (fixed seed) 5,000 images, ~6,300 people with keypoints plus unlabelled small people and crowd
regions, and ~100,000 scored detections (perturbed ground truth, duplicates and false positives), then
prints one JSON object with the times of both implementations and whether every stat is identical.

    PYTHONPATH=src .venv/bin/python scripts/bench_eval.py [--seed 0] [--images 5000] [--detections 100000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import copy
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aidpose.data.keypoints import COCO as COCO_LAYOUT
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.annotations import load_ground_truth
from aidpose.evaluation.cocoeval import evaluate_coco
from aidpose.evaluation.results import detections_from_results

# A standing person in a unit box (x right, y down), COCO keypoint order.
TEMPLATE = np.array(
    [
        [0.50, 0.08], [0.55, 0.06], [0.45, 0.06], [0.60, 0.08], [0.40, 0.08],
        [0.70, 0.22], [0.30, 0.22], [0.80, 0.38], [0.20, 0.38], [0.85, 0.52], [0.15, 0.52],
        [0.62, 0.55], [0.38, 0.55], [0.63, 0.75], [0.37, 0.75], [0.64, 0.95], [0.36, 0.95],
    ]
)  # fmt: skip


def random_pose(rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """(17, 2) keypoints of a jittered template person inside box x, y, w, h."""
    x, y, w, h = box
    unit = TEMPLATE + rng.normal(0, 0.04, TEMPLATE.shape)
    return np.stack([x + unit[:, 0] * w, y + unit[:, 1] * h], axis=1)


def make_ground_truth(rng: np.random.Generator, num_images: int) -> dict[str, Any]:
    """COCO-like person keypoint annotations: ~54% of images hold people, as in COCO val2017."""
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        width, height = int(rng.choice([640, 480, 612])), int(rng.choice([480, 427, 640]))
        images.append({"id": image_id, "width": width, "height": height, "file_name": f"{image_id:012d}.jpg"})
        if rng.random() > 0.54:
            continue
        for _ in range(1 + rng.poisson(3.1)):
            labelled = rng.random() < 0.575
            size = rng.uniform(60, 420) if labelled else rng.uniform(10, 45)
            w, h = size * rng.uniform(0.35, 0.6), size
            box = np.array([rng.uniform(0, max(1, width - w)), rng.uniform(0, max(1, height - h)), w, h])
            kpts = np.zeros((17, 3))
            if labelled:
                kpts[:, :2] = random_pose(rng, box)
                kpts[:, 2] = rng.choice([0, 1, 2], size=17, p=[0.2, 0.15, 0.65])
                kpts[kpts[:, 2] == 0, :2] = 0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": box.round(2).tolist(),
                    "area": float(round(w * h * rng.uniform(0.45, 0.75), 3)),
                    "iscrowd": int(not labelled and rng.random() < 0.02),
                    "keypoints": [float(v) for v in kpts.round(1).ravel()],
                    "num_keypoints": int(np.count_nonzero(kpts[:, 2] > 0)),
                }
            )
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": [], "skeleton": []}]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_results(rng: np.random.Generator, gt: dict[str, Any], num_detections: int) -> list[dict[str, Any]]:
    """Perturbed copies of annotated people (some duplicated) topped up with false positives."""
    results = []
    for ann in gt["annotations"]:
        if ann["num_keypoints"] == 0 and rng.random() < 0.7:
            continue
        box = np.array(ann["bbox"])
        truth = (
            random_pose(rng, box) if ann["num_keypoints"] == 0 else np.array(ann["keypoints"]).reshape(17, 3)
        )
        truth = truth[:, :2].copy()
        missing = np.all(truth == 0, axis=1)
        truth[missing] = random_pose(rng, box)[missing]
        quality = rng.uniform(0.2, 1.0)
        for copy_index in range(1 + int(rng.random() < 0.3)):  # some duplicates survive NMS
            noise = rng.normal(0, (1.05 - quality) * 0.05 * np.sqrt(box[2] * box[3]) + 0.5, truth.shape)
            kpts = np.concatenate([truth + noise, rng.uniform(0, 1, (17, 1))], axis=1)
            results.append(
                {
                    "image_id": ann["image_id"],
                    "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in kpts.ravel()],
                    "score": round(float(quality * rng.uniform(0.6, 1.0) / (1 + copy_index)), 3),
                }
            )
    images = gt["images"]
    while len(results) < num_detections:
        img = images[rng.integers(len(images))]
        size = rng.uniform(20, 300)
        box = np.array([rng.uniform(0, img["width"]), rng.uniform(0, img["height"]), size * 0.5, size])
        kpts = np.concatenate([random_pose(rng, box), rng.uniform(0, 1, (17, 1))], axis=1)
        results.append(
            {
                "image_id": img["id"],
                "category_id": 1,
                "keypoints": [round(float(v), 2) for v in kpts.ravel()],
                "score": round(float(rng.beta(1.0, 15.0)), 3),
            }
        )
    return [results[i] for i in rng.permutation(len(results))]


def pycocotools_stats(gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[np.ndarray, float]:
    """pycocotools stats and the time of evaluate + accumulate + summarize (index building excluded)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        start = time.perf_counter()
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        elapsed = time.perf_counter() - start
    return np.asarray(ev.stats), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--detections", type=int, default=100_000)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    gt = make_ground_truth(rng, args.images)
    results = make_results(rng, gt, args.detections)

    reference, t_pycoco = pycocotools_stats(gt, results)

    start = time.perf_counter()
    ground_truth = load_ground_truth(gt, COCO_LAYOUT.num_keypoints)
    detections = detections_from_results(results, ground_truth)
    t_convert = time.perf_counter() - start
    start = time.perf_counter()
    ours = evaluate_coco(ground_truth, detections)
    t_ours = time.perf_counter() - start
    ours_array = np.nan_to_num(np.array(list(ours.values())), nan=-1.0)

    with tempfile.TemporaryDirectory() as tmp:
        ann_file, res_file = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        ann_file.write_text(json.dumps(gt))
        res_file.write_text(json.dumps(results))
        start = time.perf_counter()
        full = evaluate_results(ann_file, res_file)
        t_full = time.perf_counter() - start

    labelled = sum(a["num_keypoints"] > 0 for a in gt["annotations"])
    print(
        json.dumps(
            {
                "images": len(gt["images"]),
                "annotations": len(gt["annotations"]),
                "annotations_with_keypoints": labelled,
                "detections": len(results),
                "pycocotools_eval_acc_summarize_s": round(t_pycoco, 3),
                "aidpose_coco_eval_s": round(t_ours, 3),
                "speedup": round(t_pycoco / t_ours, 1),
                "aidpose_results_to_arrays_s": round(t_convert, 3),
                "aidpose_evaluate_results_from_files_incl_vis_invis_s": round(t_full, 3),
                "stats_identical": bool(np.array_equal(reference, ours_array)),
                "max_abs_diff": float(np.max(np.abs(reference - ours_array))),
                "stats": {k: round(v, 6) for k, v in full.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
