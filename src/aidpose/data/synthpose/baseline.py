"""Mean-pose baseline: the training set's average box-normalised pose placed in each ground-truth box.

It knows where people are (their boxes) and what an average body looks like, but nothing about the image:
the score any learned estimator must clearly beat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalised_poses(annotations: Sequence[dict]) -> np.ndarray:
    """``(N, K, 3)`` keypoints of annotations with keypoints, as ``((x - bx) / bw, (y - by) / bh, v)``."""
    poses = []
    for ann in annotations:
        if ann["num_keypoints"] == 0:
            continue
        x, y, w, h = ann["bbox"]
        kps = np.asarray(ann["keypoints"], float).reshape(-1, 3).copy()
        kps[:, 0] = (kps[:, 0] - x) / max(w, 1e-6)
        kps[:, 1] = (kps[:, 1] - y) / max(h, 1e-6)
        poses.append(kps)
    if not poses:
        raise ValueError("mean pose: the training annotations have no person with labelled keypoints")
    return np.stack(poses)


def mean_pose(annotations: Sequence[dict]) -> np.ndarray:
    """``(K, 2)`` mean normalised position of each keypoint over the persons where it is labelled (v > 0).

    A keypoint never labelled goes to the box centre.
    """
    poses = normalised_poses(annotations)
    labelled = poses[..., 2] > 0
    counts = labelled.sum(0)
    sums = (poses[..., :2] * labelled[..., None]).sum(0)
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.5)


def place_pose(pose: np.ndarray, bbox: Sequence[float]) -> np.ndarray:
    """Normalised ``(K, 2)`` pose → image coordinates inside ``bbox`` = ``[x, y, w, h]``."""
    x, y, w, h = bbox
    return np.asarray(pose, float) * [w, h] + [x, y]


def mean_pose_results(train_annotations: Sequence[dict], val_annotations: Sequence[dict]) -> list[dict]:
    """COCO keypoint results: the mean training pose in the box of each labelled val person, score 1."""
    pose = mean_pose(train_annotations)
    results = []
    for ann in val_annotations:
        if ann["num_keypoints"] == 0:
            continue
        xy = place_pose(pose, ann["bbox"])
        kps = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": 1,
                "keypoints": [round(float(v), 3) for v in kps.reshape(-1)],
                "score": 1.0,
            }
        )
    return results
