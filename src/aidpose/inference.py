"""Inference on whole images through the protocol every paradigm's module keeps (:class:`PosePredictor`), and the
person boxes a top-down model is given (filtered as evaluation filters detections).

``aidpose.predict``, the W&B panels and the scripts depend on this protocol only: a top-down module crops the
boxes it is given (the same crops and decoding as validation), a bottom-up one finds every person itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from aidpose.codecs.base import Prediction
from aidpose.data.keypoints import KeypointLayout
from aidpose.geometry.affine import clip_boxes


class PosePredictor(Protocol):
    """What inference needs of a pose model (``aidpose.training.pose_module.PoseModule`` keeps it).

    ``needs_boxes``: True when :meth:`predict_people` needs person boxes (top-down crops them), False when it
    finds the people itself (bottom-up, and it takes no boxes).
    """

    layout: KeypointLayout
    needs_boxes: bool

    def predict_people(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None
    ) -> list[Prediction]:
        """The people of each BGR image (H, W, 3) uint8, in image pixels; ``boxes``: per image (N, 5)
        [x, y, w, h, score] person boxes."""


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
