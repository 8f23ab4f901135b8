"""Training augmentation: top-down (HRNet/UDP: flip, half-body, scale, rotation of a person box) and bottom-up
(HigherHRNet: scale, rotation, translation, flip of the whole image).

Only the per-sample parameters are sampled here (plain numpy draws with clipping); the image is warped
once by the dataset with the resulting UDP matrix (flip folded in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from aidpose.geometry.affine import fix_aspect_ratio

HALF_BODY_PADDING = 1.5
"""Half-body box = box of the chosen joints, grown to the input aspect ratio, × this factor (HRNet)."""
REFERENCE_SIZE = 200.0
"""HigherHRNet/mmpose express the translation range in pixels per 200 px of the cropped region."""


class AugmentationParams(NamedTuple):
    """Per-sample warp parameters: region centre and size (image px), rotation (degrees), flip, and whether
    the region is a half-body box (top-down)."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flip: bool
    half_body: bool


def sample_scale_factor(rng: np.random.Generator, sigma: float) -> float:
    """Scale factor ``1 + sigma·N(0, 1)`` clipped to ``[1 - sigma, 1 + sigma]``."""
    return min(max(1.0 + sigma * rng.standard_normal(), 1.0 - sigma), 1.0 + sigma)


def sample_rotation(rng: np.random.Generator, sigma: float, max_deg: float, prob: float) -> float:
    """With probability ``prob``, an angle ``sigma·N(0, 1)`` clipped to ``±max_deg``; otherwise 0."""
    if rng.random() >= prob:
        return 0.0
    return min(max(sigma * rng.standard_normal(), -max_deg), max_deg)


def half_body_box(
    keypoints: np.ndarray,
    upper_body_ids: Sequence[int],
    prefer_upper: bool,
    aspect_ratio: float,
    padding: float = HALF_BODY_PADDING,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and scale of the upper- or lower-body box of one person, or None (HRNet's rule).

    ``keypoints`` (K, 3) holds (x, y, v) in image pixels; joints with ``v > 0`` count. The preferred half
    is used if it has more than two labelled joints, otherwise the other half if it has more than two,
    otherwise the upper half. The box spans the chosen joints (centre = their mean), grown to the aspect
    ratio and multiplied by ``padding``; None if fewer than two joints are chosen or they all coincide.
    """
    labelled = keypoints[:, 2] > 0
    upper = np.zeros(len(keypoints), dtype=bool)
    upper[list(upper_body_ids)] = True
    upper_xy = keypoints[labelled & upper, :2]
    lower_xy = keypoints[labelled & ~upper, :2]
    first, second = (upper_xy, lower_xy) if prefer_upper else (lower_xy, upper_xy)
    chosen = first if len(first) > 2 else second if len(second) > 2 else upper_xy
    if len(chosen) < 2:
        return None
    size = chosen.max(axis=0) - chosen.min(axis=0)
    if not size.any():
        return None
    center = chosen.mean(axis=0)
    return center, fix_aspect_ratio(size, aspect_ratio) * padding


@dataclass(frozen=True)
class TopDownAugmentation:
    """HRNet/UDP augmentation settings (defaults as in HRNet and the AID paper).

    Args:
        flip_prob: probability of a horizontal flip.
        half_body_prob: probability of a half-body crop, for persons with MORE than
            ``half_body_min_keypoints`` labelled joints.
        scale_sigma: scale factor ``~ N(1, scale_sigma)`` clipped to ``[1 - σ, 1 + σ]``.
        rotation_sigma, rotation_max, rotation_prob: rotation ``~ N(0, rotation_sigma)`` degrees clipped
            to ``±rotation_max``, applied with probability ``rotation_prob``.
    """

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_keypoints: int = 8
    scale_sigma: float = 0.35
    rotation_sigma: float = 45.0
    rotation_max: float = 90.0
    rotation_prob: float = 0.6

    def __post_init__(self) -> None:
        for name in ("flip_prob", "half_body_prob", "rotation_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TopDownAugmentation.{name} must be a probability in [0, 1], got {value}")
        if not 0.0 <= self.scale_sigma < 1.0:
            raise ValueError(f"TopDownAugmentation.scale_sigma must be in [0, 1), got {self.scale_sigma}")
        for name in ("rotation_sigma", "rotation_max", "half_body_min_keypoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"TopDownAugmentation.{name} must be >= 0, got {getattr(self, name)}")

    def sample(
        self,
        rng: np.random.Generator,
        keypoints: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        aspect_ratio: float,
        upper_body_ids: Sequence[int],
    ) -> AugmentationParams:
        """Draw one sample's crop parameters from ``rng``.

        ``keypoints`` (K, 3) are (x, y, v) in image pixels; ``center``/``scale`` describe the padded box.
        Order as in HRNet: half-body box (upper or lower half preferred with probability 0.5 each), then
        scale and rotation, then flip.
        """
        half_body = False
        if (
            self.half_body_prob > 0
            and np.count_nonzero(keypoints[:, 2] > 0) > self.half_body_min_keypoints
            and rng.random() < self.half_body_prob
        ):
            box = half_body_box(keypoints, upper_body_ids, bool(rng.random() < 0.5), aspect_ratio)
            if box is not None:
                center, scale = box
                half_body = True
        scale = scale * sample_scale_factor(rng, self.scale_sigma)
        rotation = sample_rotation(rng, self.rotation_sigma, self.rotation_max, self.rotation_prob)
        flip = bool(rng.random() < self.flip_prob)
        return AugmentationParams(center, scale, rotation, flip, half_body)

    def smallest_scale(
        self, keypoints: np.ndarray, scale: np.ndarray, aspect_ratio: float, upper_body_ids: Sequence[int]
    ) -> np.ndarray:
        """The smallest crop scale (w, h) :meth:`sample` can draw for this person: its padded box or, where
        half-body crops apply, the smaller half-body box, shrunk by the largest scale draw ``1 - scale_sigma``."""
        boxes = [np.asarray(scale, dtype=np.float64)]
        if self.half_body_prob > 0 and np.count_nonzero(keypoints[:, 2] > 0) > self.half_body_min_keypoints:
            for prefer_upper in (True, False):
                box = half_body_box(keypoints, upper_body_ids, prefer_upper, aspect_ratio)
                if box is not None:
                    boxes.append(box[1])
        return min(boxes, key=lambda b: b[0]) * (1.0 - self.scale_sigma)


def image_region(image_size: Sequence[int], input_size: Sequence[int], factor: float = 1.0) -> np.ndarray:
    """Size (w, h) in image px of the region that fills the input: its short side ``factor`` × the
    image's short side, its aspect ratio the input's (HigherHRNet's ``scale_type='short'``)."""
    short = min(image_size) * factor
    w, h = input_size
    return np.array([short * w / min(w, h), short * h / min(w, h)], dtype=np.float64)


@dataclass(frozen=True)
class BottomUpAugmentation:
    """HigherHRNet's training augmentation of the whole image (defaults as HigherHRNet and the AID paper).

    Args:
        min_scale, max_scale: region short side = image short side × U(min, max) (larger: people smaller).
        max_rotation: rotation U(-max, max) degrees.
        max_translate: centre shift U(-t, t) px per 200 px of region size, in x and y (HigherHRNet's 40).
        flip_prob: probability of a horizontal flip (joints swapped left/right).
    """

    min_scale: float = 0.75
    max_scale: float = 1.5
    max_rotation: float = 30.0
    max_translate: float = 40.0
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"BottomUpAugmentation needs 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}"
            )
        if self.max_rotation < 0 or self.max_translate < 0:
            raise ValueError("BottomUpAugmentation.max_rotation and max_translate must be >= 0")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"BottomUpAugmentation.flip_prob must be in [0, 1], got {self.flip_prob}")

    def sample(
        self, rng: np.random.Generator, image_size: Sequence[int], input_size: Sequence[int]
    ) -> AugmentationParams:
        """Draw one image's warp: scale, rotation, translation, then flip."""
        factor = rng.uniform(self.min_scale, self.max_scale)
        scale = image_region(image_size, input_size, factor)
        rotation = rng.uniform(-self.max_rotation, self.max_rotation)
        shift = rng.uniform(-1.0, 1.0, size=2) * self.max_translate * min(scale) / REFERENCE_SIZE
        center = (np.asarray(image_size, dtype=np.float64) - 1) / 2 + shift
        return AugmentationParams(center, scale, float(rotation), bool(rng.random() < self.flip_prob), False)

    def smallest_scale(self, image_size: Sequence[int], input_size: Sequence[int]) -> np.ndarray:
        """The smallest region (w, h) :meth:`sample` can draw for an image: that of ``min_scale``."""
        return image_region(image_size, input_size, self.min_scale)
