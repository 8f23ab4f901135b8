"""Dataset statistics: persons per image, COCO area bands, visibility shares, CrowdPose's crowd index."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

# COCO's area ranges of the keypoint metrics (APM: medium, APL: large); smaller persons count in AP only.
MEDIUM_AREA, LARGE_AREA = 32.0**2, 96.0**2


def crowd_index(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose's crowd index of one image, kept in [0, 1].

    ``keypoints``: ``(P, K, 3)`` with COCO visibility; ``boxes``: ``(P, 4)`` as ``[x, y, w, h]``. For each
    person ``i`` with ``N_a(i) > 0`` labelled joints, ``N_b(i)`` counts the labelled joints of the other
    persons inside ``i``'s box (borders included). CrowdPose defines the index as the mean of
    ``N_b(i) / N_a(i)``; a ratio can exceed 1 in dense groups, so each ratio is clipped to 1 before
    averaging, which keeps the index in [0, 1]. Images without labelled persons have index 0.
    """
    keypoints = np.asarray(keypoints, float).reshape(len(boxes), -1, 3)
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    labelled = keypoints[..., 2] > 0
    ratios = []
    for i, (x, y, w, h) in enumerate(boxes):
        n_a = int(labelled[i].sum())
        if n_a == 0:
            continue
        others = np.delete(np.arange(len(boxes)), i)
        pts = keypoints[others][labelled[others]]
        inside = (pts[:, 0] >= x) & (pts[:, 0] <= x + w) & (pts[:, 1] >= y) & (pts[:, 1] <= y + h)
        ratios.append(min(1.0, int(inside.sum()) / n_a))
    return float(np.mean(ratios)) if ratios else 0.0


def area_band(area: float) -> str:
    """COCO area band of a person: "small" (< 32²), "medium" (32²–96²) or "large" (> 96²)."""
    return "small" if area < MEDIUM_AREA else "medium" if area <= LARGE_AREA else "large"


def dataset_statistics(coco: dict | str | Path) -> dict:
    """Summary of a COCO keypoint file (or its loaded dict): counts, bands, visibility shares, crowding."""
    if not isinstance(coco, dict):
        coco = json.loads(Path(coco).read_text())
    anns_by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        anns_by_image[ann["image_id"]].append(ann)
    counts = [len(anns) for anns in anns_by_image.values()]
    kps = np.array([a["keypoints"] for a in coco["annotations"]], float).reshape(-1, 3)
    v = kps[:, 2] if len(kps) else np.zeros(0)
    labelled = int((v > 0).sum())
    bands = Counter(area_band(a["area"]) for a in coco["annotations"] if a["num_keypoints"] > 0)
    persons = sum(bands.values())
    crowd = [
        crowd_index(np.array([a["keypoints"] for a in anns]), np.array([a["bbox"] for a in anns]))
        for anns in anns_by_image.values()
        if anns
    ]
    return {
        "images": len(coco["images"]),
        "persons": len(coco["annotations"]),
        "persons_per_image": float(np.mean(counts)) if counts else 0.0,
        "persons_per_image_hist": {str(k): c for k, c in sorted(Counter(counts).items())},
        "area_bands": {
            b: round(bands[b] / persons, 4) if persons else 0.0 for b in ("small", "medium", "large")
        },
        "keypoints_labelled": labelled,
        "share_hidden_v1": round(float((v == 1).sum()) / labelled, 4) if labelled else 0.0,
        "share_visible_v2": round(float((v == 2).sum()) / labelled, 4) if labelled else 0.0,
        "share_outside_v0": round(float((v == 0).sum()) / len(v), 4) if len(v) else 0.0,
        "crowd_index_mean": round(float(np.mean(crowd)), 4) if crowd else 0.0,
    }
