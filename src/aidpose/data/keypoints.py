"""Keypoint definitions of the supported datasets: names, skeleton, flip pairs and OKS sigmas."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KeypointLayout:
    """Everything the pipeline, codecs and metrics need to know about a keypoint layout.

    ``skeleton`` uses COCO's 1-based indices (as stored in annotation files); ``flip_pairs``
    and ``upper_body_ids`` are 0-based.
    """

    name: str
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: np.ndarray = field(repr=False)
    upper_body_ids: tuple[int, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def lower_body_ids(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_keypoints) if i not in self.upper_body_ids)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` such that ``flipped[:, k] = original[:, p[k]]`` after a horizontal flip."""
        index = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index


# fmt: off
COCO = KeypointLayout(
    name="coco",
    keypoint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    skeleton=(
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=np.array(
        [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
    )
    / 10.0,
    upper_body_ids=tuple(range(11)),
)

CROWDPOSE = KeypointLayout(
    name="crowdpose",
    keypoint_names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    skeleton=(
        (13, 14), (14, 1), (14, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8),
        (7, 9), (9, 11), (8, 10), (10, 12),
    ),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    sigmas=np.array([0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79])
    / 10.0,
    upper_body_ids=(0, 1, 2, 3, 4, 5, 12, 13),
)

# AI Challenger (Wu et al., 2017), as mmpose's configs/_base_/datasets/aic.py; its mapping onto COCO: aidpose.data.aic
AIC = KeypointLayout(
    name="aic",
    keypoint_names=(
        "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
        "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck",
    ),
    skeleton=(
        (3, 2), (2, 1), (1, 14), (14, 4), (4, 5), (5, 6), (9, 8), (8, 7), (7, 10), (10, 11), (11, 12),
        (13, 14), (1, 7), (4, 10),
    ),
    flip_pairs=((0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)),
    sigmas=np.array([
        0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
        0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173,
    ]),
    upper_body_ids=(0, 1, 2, 3, 4, 5, 12, 13),
)

# fmt: on

LAYOUTS: dict[str, KeypointLayout] = {m.name: m for m in (COCO, CROWDPOSE, AIC)}


def get_layout(name: str) -> KeypointLayout:
    """Return the keypoint layout called ``name`` ("coco", "crowdpose" or "aic")."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint layout {name!r}; choose one of {sorted(LAYOUTS)}") from None
