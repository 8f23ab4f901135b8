"""Associative-embedding grouping (Newell et al., 2017; HigherHRNet, Cheng et al., 2020).

From aggregated heatmaps ``(K, H, W)`` and tag maps ``(K, H, W, L)`` of one image: max-pool NMS, the top-k
candidates of every joint, grouping of candidates into people by Hungarian matching on tag distance and
heat value, and filling of the joints a person lacks. Coordinates are heatmap pixels (x, y).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
"""HigherHRNet's grouping order for COCO: head, shoulders, hips, then the limbs outwards."""


def heatmap_nms(heatmaps: np.ndarray, kernel_size: int) -> np.ndarray:
    """Keep the maxima of their ``kernel_size`` × ``kernel_size`` neighbourhood, zero the rest (``(K, H, W)``).

    A max-pool with stride 1 and "same" padding (HigherHRNet's NMS), as one grey dilation per map.
    """
    if kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(f"nms_kernel must be an odd number >= 1, got {kernel_size}")
    kernel = np.ones((kernel_size, kernel_size), dtype=np.uint8)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    pooled = np.empty_like(heatmaps)
    for i, heatmap in enumerate(heatmaps):
        cv2.dilate(heatmap, kernel, dst=pooled[i])
    return np.where(pooled == heatmaps, heatmaps, np.float32(0.0))


class Candidates(NamedTuple):
    """The ``M`` strongest NMS maxima of each of ``K`` joints."""

    vals: np.ndarray  # (K, M) heat values
    locs: np.ndarray  # (K, M, 2) int64 (x, y)
    tags: np.ndarray  # (K, M, L)


def top_k_candidates(heatmaps_nms: np.ndarray, tags: np.ndarray, k: int) -> Candidates:
    """Top-``k`` candidates of every joint from NMS heatmaps ``(K, H, W)`` and tag maps ``(K, H, W, L)``."""
    num_joints, h, w = heatmaps_nms.shape
    k = min(k, h * w)
    vals, index = torch.from_numpy(np.ascontiguousarray(heatmaps_nms).reshape(num_joints, h * w)).topk(
        k, dim=1
    )
    index = index.numpy()
    cand_tags = np.take_along_axis(tags.reshape(num_joints, h * w, -1), index[..., None], axis=1)
    locs = np.stack([index % w, index // w], axis=-1)
    return Candidates(vals.numpy(), locs, cand_tags.astype(np.float32, copy=False))


class Groups(NamedTuple):
    """People found by grouping: joints (P, K, 3) as (x, y, heat), 0 heat = missing, and mean tags (P, L)."""

    keypoints: np.ndarray
    tags: np.ndarray


def group_by_tags(
    candidates: Candidates,
    joint_order: Sequence[int],
    detection_threshold: float,
    tag_threshold: float,
    max_people: int,
) -> Groups:
    """Group candidates into people, joint by joint in ``joint_order`` (HigherHRNet's ``match_by_tag``).

    Candidates with heat ``<= detection_threshold`` are dropped. The first joint with candidates opens
    one person per candidate. Each later joint's candidates are matched to the first ``max_people``
    people by the Hungarian algorithm on ``round(|tag - person tag|) * 100 - heat`` (a person's tag is
    the mean of its joints' tags); a match whose tag distance is ``>= tag_threshold``, and every
    unmatched candidate, opens a new person.
    """
    vals, locs, tags = candidates
    num_joints, _, dim = tags.shape
    if sorted(joint_order) != list(range(num_joints)):
        raise ValueError(f"joint_order must be a permutation of 0..{num_joints - 1}, got {list(joint_order)}")
    keypoints = np.zeros((0, num_joints, 3), dtype=np.float32)
    tag_sum = np.zeros((0, dim), dtype=np.float64)
    tag_count = np.zeros(0, dtype=np.int64)
    for joint in joint_order:
        keep = vals[joint] > detection_threshold
        if not keep.any():
            continue
        joint_vals, joint_locs, joint_tags = vals[joint][keep], locs[joint][keep], tags[joint][keep]
        target = np.full(len(joint_vals), -1, dtype=np.int64)  # person of each candidate, -1 = new
        num_grouped = min(len(tag_count), max_people)
        if num_grouped:
            person_tags = tag_sum[:num_grouped] / tag_count[:num_grouped, None]
            dist = np.linalg.norm(joint_tags[:, None, :] - person_tags[None, :, :], axis=-1)
            cost = np.round(dist) * 100 - joint_vals[:, None]
            rows, cols = linear_sum_assignment(cost)
            close = dist[rows, cols] < tag_threshold
            target[rows[close]] = cols[close]
        new = np.flatnonzero(target < 0)
        target[new] = len(tag_count) + np.arange(len(new))
        keypoints = np.concatenate([keypoints, np.zeros((len(new), num_joints, 3), np.float32)])
        tag_sum = np.concatenate([tag_sum, np.zeros((len(new), dim))])
        tag_count = np.concatenate([tag_count, np.zeros(len(new), np.int64)])
        keypoints[target, joint, :2] = joint_locs
        keypoints[target, joint, 2] = joint_vals
        tag_sum[target] += joint_tags
        tag_count[target] += 1
    person_tags = (tag_sum / np.maximum(tag_count, 1)[:, None]).astype(np.float32)
    return Groups(keypoints, person_tags)


def fill_missing_joints(
    keypoints: np.ndarray,
    person_tags: np.ndarray,
    heatmaps: np.ndarray,
    tags: np.ndarray,
    candidates: Candidates | None = None,
) -> np.ndarray:
    """Give each person's missing joints (heat 0) the best location of that joint's heatmap (HigherHRNet's refine).

    For person ``p`` and missing joint ``k`` the location is the first argmax of
    ``heatmaps[k] - round(|tags[k] - person_tags[p]|)``; it is taken only if its heat is ``> 0``.
    ``keypoints`` (P, K, 3), ``person_tags`` (P, L), ``heatmaps`` (K, H, W), ``tags`` (K, H, W, L);
    returns a filled copy. One vectorised pass per joint over the people missing it.

    With ``candidates`` (from ``top_k_candidates``) the search is pruned exactly: the objective at any
    candidate location is a lower bound of a person's maximum, and no pixel with less heat than that
    bound can reach it (the objective never exceeds the heat), so only pixels at or above the smallest
    bound are searched, in their original order (same argmax, same tie-break).
    """
    keypoints = keypoints.copy()
    num_joints, h, w = heatmaps.shape
    flat_heat = heatmaps.reshape(num_joints, h * w)
    flat_tags = tags.reshape(num_joints, h * w, -1)

    def objective(heat: np.ndarray, joint_tags: np.ndarray, people: np.ndarray) -> np.ndarray:
        diff = joint_tags[None, :, :] - person_tags[people][:, None, :]  # (P', N, L)
        dist = np.abs(diff[..., 0]) if diff.shape[-1] == 1 else np.sqrt((diff * diff).sum(-1))
        return heat[None, :] - np.round(dist)

    for joint in range(num_joints):
        people = np.flatnonzero(keypoints[:, joint, 2] == 0)
        if not len(people):
            continue
        heat, joint_tags = flat_heat[joint], flat_tags[joint]
        pixels = None
        if candidates is not None:
            locs = candidates.locs[joint, :, 1] * w + candidates.locs[joint, :, 0]
            bound = objective(heat[locs], candidates.tags[joint], people).max(axis=1).min()
            above = np.flatnonzero(heat >= bound)
            if 2 * len(above) < len(heat):  # a subset only pays off when it is small
                pixels, heat, joint_tags = above, heat[above], joint_tags[above]
        best = objective(heat, joint_tags, people).argmax(axis=1)
        value = heat[best]
        best = best if pixels is None else pixels[best]
        found = value > 0
        keypoints[people[found], joint] = np.stack([best % w, best // w, value], axis=-1)[found].astype(
            np.float32
        )
    return keypoints


def person_tags_at(tags: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(P, L) mean tag of each person's found joints (heat > 0), each read at its position truncated to a pixel
    and clipped to the map: the person tag of the AID authors' filling, which reads it after DARK-UDP has moved
    the joints (UDP-Pose branch ``mmpose``, ``mmpose/core/post_processing/group.py`` lines 302-312, ``refine``). ``tags`` (K, H, W, L),
    ``keypoints`` (P, K, 3) heatmap (x, y, heat)."""
    num_joints, h, w, _ = tags.shape
    found = keypoints[..., 2] > 0
    x = np.clip(keypoints[..., 0].astype(np.int64), 0, w - 1)
    y = np.clip(keypoints[..., 1].astype(np.int64), 0, h - 1)
    values = tags[np.arange(num_joints)[None, :], y, x]  # (P, K, L)
    return (values * found[..., None]).sum(axis=1) / np.maximum(found.sum(axis=1), 1)[:, None]


def quarter_pixel_shift(heatmaps: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Pixel positions ``(P, K, 2)`` on heatmaps ``(K, H, W)`` moved a quarter pixel towards the higher of the
    two neighbours in x and in y (−¼ where they are equal): HigherHRNet's sub-pixel step for the joints its
    ``refine`` fills (``lib/core/group.py`` lines 238-247), kept without its half-pixel offset by the UDP-Pose
    grouping (branch ``mmpose``, ``mmpose/core/post_processing/group.py`` lines 328-342)."""
    num_joints, h, w = heatmaps.shape
    x = positions[..., 0].astype(np.int64)
    y = positions[..., 1].astype(np.int64)
    joint = np.arange(num_joints)[None, :]
    right, left = heatmaps[joint, y, np.minimum(x + 1, w - 1)], heatmaps[joint, y, np.maximum(x - 1, 0)]
    below, above = heatmaps[joint, np.minimum(y + 1, h - 1), x], heatmaps[joint, np.maximum(y - 1, 0), x]
    return np.stack(
        [x + np.where(right > left, 0.25, -0.25), y + np.where(below > above, 0.25, -0.25)], axis=-1
    )
