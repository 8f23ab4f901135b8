"""Top-down inference on whole images: person boxes → UDP crops → heatmaps → keypoints in the image.

The same geometry as the val pipeline of :class:`~aidpose.data.topdown.TopDownDataset` (box → padded
centre/scale → UDP warp, no rotation) and the same decoding as validation (flip test, DARK-UDP), so
predictions on a photo equal the evaluation's predictions for the same box.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from aidpose.data.keypoints import KeypointMeta
from aidpose.geometry.affine import (
    box_to_center_scale,
    clip_boxes,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)
from aidpose.training.topdown_module import TopDownPoseModule


def filter_boxes(
    boxes_xywh: np.ndarray,
    scores: np.ndarray,
    image_size: tuple[int, int],
    score_thr: float = 0.0,
    min_area: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Person boxes as evaluation uses them: score ≥ ``score_thr``, clipped to the image, non-empty, area ≥ ``min_area``.

    Returns the kept boxes (N, 4) float32, their scores (N,) and the counts of dropped boxes per reason.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    confident = scores >= score_thr
    clipped, valid = clip_boxes(boxes, np.tile(np.asarray(image_size, dtype=np.float64), (len(boxes), 1)))
    large = clipped[:, 2] * clipped[:, 3] >= min_area
    keep = confident & valid & large
    counts = {
        "skipped_low_score": int((~confident).sum()),
        "skipped_empty_box": int((confident & ~valid).sum()),
        "skipped_small_box": int((confident & valid & ~large).sum()),
    }
    return clipped[keep], scores[keep], counts


def whole_image_box(width: int, height: int) -> np.ndarray:
    """The one box (1, 4) = (0, 0, width, height) used when no person boxes are given."""
    return np.array([[0.0, 0.0, float(width), float(height)]])


def person_crops(
    image_bgr: np.ndarray, boxes_xywh: np.ndarray, input_size: Sequence[int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """UDP crops (N, 3, H, W) uint8 RGB of the boxes and their crop → image matrices (N, 2, 3) float32."""
    size = (int(input_size[0]), int(input_size[1]))
    centers, scales = box_to_center_scale(np.asarray(boxes_xywh).reshape(-1, 4), size[0] / size[1], padding)
    crops = np.zeros((len(centers), 3, size[1], size[0]), dtype=np.uint8)
    inverse = np.zeros((len(centers), 2, 3), dtype=np.float32)
    for i, (center, scale) in enumerate(zip(centers, scales, strict=True)):
        matrix = udp_warp_matrix(center, scale, 0.0, size)
        crops[i] = warp_to_rgb(image_bgr, matrix, size).transpose(2, 0, 1)
        inverse[i] = invert_affine(matrix)
    return crops, inverse


@torch.no_grad()
def predict_keypoints(
    module: TopDownPoseModule, crops: np.ndarray, inv_affines: np.ndarray, batch_size: int = 32
) -> np.ndarray:
    """Keypoints (N, K, 3) = image x, y, score of the crops: the module's flip test and codec (DARK blur)."""
    was_training = module.training
    module.eval()
    out = np.zeros((len(crops), module.layout.num_keypoints, 3), dtype=np.float32)
    for start in range(0, len(crops), batch_size):
        batch = torch.from_numpy(crops[start : start + batch_size]).to(module.device)
        heatmaps = module.predict_heatmaps(batch)
        out[start : start + len(batch)] = module.codec.decode(
            heatmaps.float().cpu().numpy(), inv_affines[start : start + batch_size]
        )
    module.train(was_training)
    return out


def side_colors(layout: KeypointMeta) -> np.ndarray:
    """BGR colour per keypoint: orange for left, blue for right, green for the rest."""
    colors = np.array([(0, 200, 0)] * layout.num_keypoints, dtype=np.int64)
    for k, name in enumerate(layout.keypoint_names):
        if name.startswith("left_"):
            colors[k] = (0, 140, 255)
        elif name.startswith("right_"):
            colors[k] = (255, 120, 0)
    return colors


def draw_poses(
    image_bgr: np.ndarray, keypoints: np.ndarray, layout: KeypointMeta, score_thr: float = 0.3
) -> np.ndarray:
    """A copy of the image with the skeletons (N, K, 3) drawn; keypoints scoring below ``score_thr`` are left out.

    Limbs follow the layout's (1-based) skeleton and take the colour of their side (left, right, centre).
    """
    canvas = image_bgr.copy()
    colors = side_colors(layout)
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    for pose in np.asarray(keypoints).reshape(-1, layout.num_keypoints, 3):
        shown = pose[:, 2] >= score_thr
        points = [(round(float(x)), round(float(y))) for x, y in pose[:, :2]]
        for a, b in layout.skeleton:
            a, b = a - 1, b - 1
            if shown[a] and shown[b]:
                color = colors[a] if (colors[a] == colors[b]).all() else np.array((0, 200, 0))
                cv2.line(canvas, points[a], points[b], tuple(int(c) for c in color), thickness, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            cv2.circle(canvas, points[k], thickness + 2, tuple(int(c) for c in colors[k]), -1, cv2.LINE_AA)
    return canvas
