"""AID: Augmentation by Information Dropping (Huang et al. 2020) for human pose estimation.

Four droppers that hide image appearance while every label stays, usable as albumentations 2.x
transforms and through the fast ``dropper.drop(image, keypoints, rng)`` of aidpose's sample pipeline:
:class:`Cutout` (best top-down), :class:`HideAndSeek` (best bottom-up), :class:`GridMask` and
:class:`RandomErasing`; :func:`dropped_keypoint_stats` measures how many visible keypoints were hidden, :func:`dropped_area_share` how much
of a crop is dropped. HaS cell sizes and GridMask periods are fractions of the crop width, Cutout's holes too, and
Random Erasing's area is a share of the crop: every dropper hides the same share at every input size.
"""

from aidpose.aid.fill import IMAGENET_MEAN_RGB
from aidpose.aid.stats import DroppedKeypointStats, dropped_area_share, dropped_keypoint_stats
from aidpose.aid.transforms import Cutout, GridMask, HideAndSeek, InformationDropper, RandomErasing, Strength

__all__ = [
    "IMAGENET_MEAN_RGB",
    "Cutout",
    "DroppedKeypointStats",
    "GridMask",
    "HideAndSeek",
    "InformationDropper",
    "RandomErasing",
    "Strength",
    "dropped_area_share",
    "dropped_keypoint_stats",
]
