"""How much a dropper hides: the share of visible keypoints that lost their appearance
(``train/aid_dropped_kpt_frac``) and the share of a crop's area it drops (:func:`dropped_area_share`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aidpose.aid.transforms import InformationDropper


@dataclass(frozen=True)
class DroppedKeypointStats:
    """Per-joint counts of visible keypoints and of those among them whose pixel was dropped.

    Add instances to accumulate over batches or an epoch.
    """

    visible: np.ndarray  # (K,) int64
    dropped: np.ndarray  # (K,) int64

    @classmethod
    def empty(cls, num_keypoints: int) -> DroppedKeypointStats:
        zeros = np.zeros(num_keypoints, dtype=np.int64)
        return cls(visible=zeros, dropped=zeros.copy())

    @classmethod
    def of_items(cls, visible_count: np.ndarray, dropped_count: np.ndarray) -> DroppedKeypointStats:
        """The sum of items' per-joint counts ``(B, K)`` (the sample pipeline's ``visible_count`` /
        ``dropped_count``)."""
        return cls(visible=visible_count.sum(0, dtype=np.int64), dropped=dropped_count.sum(0, dtype=np.int64))

    def __add__(self, other: DroppedKeypointStats) -> DroppedKeypointStats:
        if self.visible.shape != other.visible.shape:
            raise ValueError(f"cannot add stats of {self.visible.size} and {other.visible.size} keypoints")
        return DroppedKeypointStats(
            visible=self.visible + other.visible, dropped=self.dropped + other.dropped
        )

    @property
    def fraction(self) -> float:
        """Share of all visible keypoints that were dropped (NaN when none was visible)."""
        total = int(self.visible.sum())
        return float(self.dropped.sum()) / total if total else float("nan")

    @property
    def per_joint(self) -> np.ndarray:
        """(K,) share of each joint's visible keypoints that were dropped (NaN where none was visible)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.visible > 0, self.dropped / np.maximum(self.visible, 1), np.nan)


def dropped_keypoint_stats(
    dropped: np.ndarray, visibility: np.ndarray, min_visibility: int = 2
) -> DroppedKeypointStats:
    """Count, per joint, the visible keypoints and the dropped ones among them.

    Args:
        dropped: (..., K) bool flags from a dropper (e.g. N×K for a batch).
        visibility: (..., K) COCO visibility of the same keypoints, or a bool mask of the visible ones
            (e.g. the sample pipeline's ``visible``: v = 2 and inside the crop).
        min_visibility: a keypoint counts as visible when v ≥ this (2: visible in the image, as COCO's
            v=1 keypoints have no appearance to lose; 1: every labelled keypoint, e.g. for 0/1 weights).
            Unused for a bool mask.
    """
    dropped = np.asarray(dropped, dtype=bool)
    visibility = np.asarray(visibility)
    if dropped.shape != visibility.shape or dropped.ndim == 0:
        raise ValueError(
            f"dropped {dropped.shape} and visibility {visibility.shape} must have the same (..., K) shape"
        )
    mask = visibility if visibility.dtype == bool else visibility >= min_visibility
    visible = mask.reshape(-1, dropped.shape[-1])
    hit = dropped.reshape(-1, dropped.shape[-1]) & visible
    return DroppedKeypointStats(
        visible=visible.sum(axis=0, dtype=np.int64), dropped=hit.sum(axis=0, dtype=np.int64)
    )


def dropped_area_share(
    dropper: InformationDropper, height: int, width: int, draws: int, seed: int
) -> dict[str, float]:
    """Mean and standard deviation over ``draws`` regions of the share of an H×W crop's pixels dropped.

    Regions come from ``dropper.sample_region`` with a generator seeded by ``seed`` (the dropper's ``p``
    is ignored: every draw is applied). A dropper whose strength is relative to the crop gives the same
    numbers at every crop size, up to pixel rounding.
    """
    if draws < 1:
        raise ValueError(f"draws={draws} must be ≥ 1")
    rng = np.random.default_rng(seed)
    no_keypoints = np.zeros((0, 2))
    shares = [
        float(
            dropper.region_mask(
                dropper.sample_region(rng, height, width, no_keypoints, None), height, width
            ).local.sum()
        )
        / (height * width)
        for _ in range(draws)
    ]
    return {"mean": float(np.mean(shares)), "std": float(np.std(shares))}
