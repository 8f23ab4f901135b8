"""Bottom-up UDP codec with associative embedding (HigherHRNet + UDP).

Encoding (training targets of one warped image): per output resolution, Gaussian heatmaps ``(K, h, w)``
with sub-pixel UDP centres (the maximum over people where they overlap), and the flattened tag-map index
of every labelled joint for the associative-embedding loss.

Decoding (network outputs → people in image pixels):

1. ``merge_resolutions``: every output is resized to the largest resolution (bilinear, corners aligned as
   UDP's pixel-centre geometry requires); heatmaps are averaged over the resolutions that predict them
   (HigherHRNet: 1/4 upsampled and averaged with 1/2), tags come from the outputs that predict them
   (HigherHRNet: the 1/4 output, upsampled).
2. flip test (``flip_back``): the mirrored input's maps are mirrored back with left/right channels swapped;
   heatmaps are averaged with the original ones, tags stacked as a second tag dimension.
3. multi-scale test (``merge_scales``): heatmaps of every scale resized to one size and averaged; tags
   concatenated along the tag dimension (all scales, as the issue and the AE paper describe; HigherHRNet's
   code keeps only scale 1's tags — ``tags_all_scales=False``).
4. NMS by max-pooling, top-k candidates per joint, grouping by tags, filling of missing joints and DARK-UDP
   refinement (of every joint after filling; ``dark_before_fill=True``: of the grouped joints before filling,
   as the AID authors' UDP-Pose grouping), heatmap → input → image coordinates (``aidpose.codecs.grouping``).

The test inputs themselves (short side at the input size, padded to ``size_divisor`` by ``size_rule``) are
``aidpose.geometry.inference``'s; the codec holds their options.

This module is the math; a LightningModule calls ``AssociativeEmbeddingCodec.encode``/``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from aidpose.codecs.base import KeypointCodec, Prediction
from aidpose.codecs.grouping import (
    COCO_JOINT_ORDER,
    fill_missing_joints,
    group_by_tags,
    heatmap_nms,
    person_tags_at,
    quarter_pixel_shift,
    top_k_candidates,
)
from aidpose.codecs.udp_heatmap import flip_back_heatmaps, refine_dark_udp, udp_stride
from aidpose.geometry.affine import apply_affine
from aidpose.geometry.inference import SIZE_RULES, scale_inputs


def encode_bottomup_heatmaps(
    keypoints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int], sigma: float
) -> np.ndarray:
    """Heatmaps ``(K, h, w)`` float32 of ``N`` people's joints ``(N, K, 2)`` given in heatmap pixels.

    Each labelled joint (``visible > 0``) gets an unnormalised Gaussian (peak 1) centred at its exact
    sub-pixel position, restricted to the integer window ``[c - r, c + r]``, ``r = int(3σ)``, around the
    nearest pixel ``c = floor(μ + 0.5)`` (the top-down codec's window on the map; ``floor`` rather than
    ``trunc`` keeps joints just outside the map mirror-symmetric under flips); where people overlap the maximum is kept. Vectorised: every
    (person, joint) window is scattered with one ``np.maximum.at``.
    """
    w, h = heatmap_size
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, keypoints.shape[-2], 2)
    num_people, num_joints = kps.shape[:2]
    heatmaps = np.zeros((num_joints, h, w), dtype=np.float32)
    radius = int(3 * sigma)
    offsets = np.arange(-radius, radius + 1)
    person, joint = np.nonzero(np.asarray(visible).reshape(num_people, num_joints) > 0)
    mu = kps[person, joint]  # (M, 2)
    centre = np.floor(mu + 0.5).astype(np.int64)
    xs = centre[:, 0, None] + offsets  # (M, S)
    ys = centre[:, 1, None] + offsets
    # float32 Gaussian profiles, zero outside the map; out-of-map window pixels are clipped onto the
    # border with value 0, which leaves the maximum unchanged
    gx = np.exp((-0.5 / sigma**2) * (xs - mu[:, 0, None]) ** 2).astype(np.float32) * ((xs >= 0) & (xs < w))
    gy = np.exp((-0.5 / sigma**2) * (ys - mu[:, 1, None]) ** 2).astype(np.float32) * ((ys >= 0) & (ys < h))
    values = gy[:, :, None] * gx[:, None, :]  # (M, S, S)
    rows = (joint[:, None] * h + np.clip(ys, 0, h - 1)) * w  # (M, S)
    index = rows[:, :, None] + np.clip(xs, 0, w - 1)[:, None, :]
    np.maximum.at(heatmaps.reshape(-1), index.reshape(-1), values.reshape(-1))
    return heatmaps


def encode_keypoint_indices(
    keypoints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int]
) -> np.ndarray:
    """Tag-loss indices ``(N, K, 2)`` int64 of joints ``(N, K, 2)`` in heatmap pixels.

    Entry ``[n, k] = (k·h·w + y·w + x, valid)`` with ``(x, y)`` the joint's nearest heatmap pixel: the
    index into the flattened per-joint tag maps ``(K·h·w,)``. ``valid`` is 1 for a labelled joint whose
    pixel lies on the heatmap, else 0 (and the index 0).
    """
    w, h = heatmap_size
    kps = np.asarray(keypoints, dtype=np.float64)
    num_joints = kps.shape[1]
    xy = np.floor(kps + 0.5).astype(np.int64)
    valid = (
        (np.asarray(visible) > 0)
        & (xy[..., 0] >= 0)
        & (xy[..., 0] < w)
        & (xy[..., 1] >= 0)
        & (xy[..., 1] < h)
    )
    joint = np.arange(num_joints)[None, :]
    index = (joint * h + xy[..., 1]) * w + xy[..., 0]
    return np.stack([np.where(valid, index, 0), valid.astype(np.int64)], axis=-1)


def merge_resolutions(
    outputs: Sequence[torch.Tensor],
    num_keypoints: int,
    with_heatmaps: Sequence[bool],
    with_tags: Sequence[bool],
    align_corners: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network outputs ``(B, C_i, h_i, w_i)``, lowest resolution first → heatmaps ``(B, K, H, W)`` and tags
    ``(B, K, H, W, L)`` at the largest resolution.

    Output ``i`` holds ``K`` heatmap channels first if ``with_heatmaps[i]``, then ``K`` tag channels if
    ``with_tags[i]``. Heatmaps are averaged over the outputs that have them; tags are stacked on the last
    axis (one per output that has them).
    """
    if not (len(outputs) == len(with_heatmaps) == len(with_tags)):
        raise ValueError(
            f"{len(outputs)} outputs but {len(with_heatmaps)} with_heatmaps and {len(with_tags)} with_tags flags"
        )
    size = outputs[-1].shape[-2:]
    heatmaps, tags = [], []
    for output, has_heatmaps, has_tags in zip(outputs, with_heatmaps, with_tags, strict=True):
        if output.shape[-2:] != size:
            output = F.interpolate(output, size=size, mode="bilinear", align_corners=align_corners)
        offset = num_keypoints if has_heatmaps else 0
        if has_heatmaps:
            heatmaps.append(output[:, :num_keypoints])
        if has_tags:
            tags.append(output[:, offset : offset + num_keypoints])
    if not heatmaps or not tags:
        raise ValueError("merge_resolutions needs at least one output with heatmaps and one with tags")
    return torch.stack(heatmaps).mean(0), torch.stack(tags, dim=-1)


def flip_back(
    heatmaps: torch.Tensor, tags: torch.Tensor, flip_index: Sequence[int] | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps ``(B, K, H, W)`` and tags ``(B, K, H, W, L)`` of a mirrored input → maps of the original input.

    Width mirrored and left/right joints swapped; under UDP the mirror of the input is exactly the
    reversal of the map columns (no one-pixel shift), at every resolution.
    """
    flipped_tags = flip_back_heatmaps(tags.movedim(-1, 1), flip_index).movedim(1, -1)
    return flip_back_heatmaps(heatmaps, flip_index), flipped_tags


def merge_flip(
    heatmaps: torch.Tensor, tags: torch.Tensor, flipped_heatmaps: torch.Tensor, flipped_tags: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip test: average the heatmaps, concatenate the tags (already flipped back, see ``flip_back``)."""
    return 0.5 * (heatmaps + flipped_heatmaps), torch.cat([tags, flipped_tags], dim=-1)


def merge_scales(
    heatmaps: Sequence[torch.Tensor],
    tags: Sequence[torch.Tensor],
    size: Sequence[int],
    align_corners: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-scale test: per-scale heatmaps ``(B, K, h_s, w_s)`` and tags ``(B, K, h_s, w_s, L_s)`` → heatmaps
    averaged and tags concatenated at ``size = (W, H)``.

    Every scale's input must cover the same image region (``aidpose.geometry.inference.inference_warps``), so resizing with
    aligned corners maps the same image point to the same pixel.
    """
    out_hw = (int(size[1]), int(size[0]))

    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == out_hw:
            return x
        return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=align_corners)

    merged = torch.stack([resize(h) for h in heatmaps]).mean(0)
    merged_tags = torch.cat(
        [resize(t.movedim(-1, 1).flatten(1, 2)).unflatten(1, (t.shape[-1], -1)).movedim(1, -1) for t in tags],
        dim=-1,
    )
    return merged, merged_tags


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


@dataclass
class AssociativeEmbeddingCodec(KeypointCodec):
    """Bottom-up UDP targets and associative-embedding decoding (the :class:`~aidpose.codecs.base.KeypointCodec`
    contract; every option reachable from a config).

    Its outputs at test time: the network's outputs of one test input (a list, lowest resolution first) are
    merged into ``(heatmaps, tags)`` at the largest resolution (:meth:`merge_outputs`); :meth:`flip_back`,
    :meth:`merge_flip`, :meth:`merge_scales` and :meth:`decode` take such merged maps.

    Args:
        input_size: network input (width, height) in training.
        heatmap_sizes: (width, height) of every output resolution, lowest first
            (HigherHRNet at 512: ``[[128, 128], [256, 256]]``; ``simple``: ``[[128, 128]]``).
        output_strides: instead of ``heatmap_sizes``: input px per heatmap px of every output, lowest
            resolution first (HigherHRNet ``[4, 2]``, ``simple`` ``[4]``); sizes = input size / stride.
        sigma: Gaussian sigma in heatmap pixels (the same at every resolution, as HigherHRNet).
        with_heatmaps, with_tags: which outputs predict heatmaps / tags (default: all heatmaps, tags at the
            lowest resolution only). Tag-loss indices are encoded at the first output with tags.
        max_people: people kept by decoding, and rows of the tag-loss indices in training.
        nms_kernel, top_k, detection_threshold, tag_threshold: grouping (HigherHRNet: 5, 30, 0.1, 1).
        joint_order: grouping order (default: HigherHRNet's for 17 COCO joints, else 0..K-1).
        use_udp: align corners when resizing maps (UDP); False resizes as plain bilinear.
        refine: fill each person's missing joints from the heatmaps (HigherHRNet's ``refine``).
        blur_kernel: DARK-UDP blur kernel for the refinement of every joint (0: no refinement).
        dark_before_fill: refine the grouped joints with DARK-UDP before filling the missing ones, each filled
            joint at its heatmap maximum shifted a quarter pixel towards the higher neighbour and every person's
            tag read at its refined joints (the AID authors' UDP-Pose grouping); False: fill, then refine every
            joint with DARK-UDP.
        flip_test: average with the mirrored input. scales: test scales (e.g. ``[0.5, 1, 2]``).
        tags_all_scales: concatenate the tags of every scale (False: scale 1's only, HigherHRNet's code).
        size_divisor, size_rule: the test inputs' sides are padded to multiples of ``size_divisor`` by
            ``size_rule`` (``aidpose.geometry.inference.inference_sizes``: ``aidpose`` or ``higherhrnet``).
    """

    input_size: tuple[int, int]
    heatmap_sizes: list[tuple[int, int]] | None = None
    sigma: float = 2.0
    with_heatmaps: list[bool] | None = None
    with_tags: list[bool] | None = None
    max_people: int = 30
    nms_kernel: int = 5
    top_k: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    joint_order: list[int] | None = None
    use_udp: bool = True
    refine: bool = True
    blur_kernel: int = 3
    flip_test: bool = True
    scales: list[float] = field(default_factory=lambda: [1.0])
    tags_all_scales: bool = True
    output_strides: list[int] | None = None
    dark_before_fill: bool = False
    size_divisor: int = 32
    size_rule: str = "aidpose"

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.scales = [float(v) for v in self.scales]  # plain lists (config lists arrive as ListConfig)
        if self.output_strides is not None:
            self.output_strides = [int(v) for v in self.output_strides]
        if self.joint_order is not None:
            self.joint_order = [int(v) for v in self.joint_order]
        if self.heatmap_sizes is None and self.output_strides is None:
            raise ValueError("give the codec heatmap_sizes or output_strides")
        if self.output_strides is not None:
            w, h = self.input_size
            if any(w % s or h % s for s in self.output_strides):
                raise ValueError(
                    f"paradigm.input_size={list(self.input_size)} is not a multiple of every output stride "
                    f"{list(self.output_strides)}: use an input size divisible by 32"
                )
            sizes = [(w // s, h // s) for s in self.output_strides]
            if self.heatmap_sizes is not None and [tuple(v) for v in self.heatmap_sizes] != sizes:
                raise ValueError(
                    f"heatmap_sizes {self.heatmap_sizes} disagree with output_strides {self.output_strides}"
                )
            self.heatmap_sizes = sizes
        self.heatmap_sizes = [(int(w), int(h)) for w, h in self.heatmap_sizes]
        n = len(self.heatmap_sizes)
        if n == 0 or min(min(s) for s in self.heatmap_sizes) < 2:
            raise ValueError(
                f"heatmap_sizes must list (width, height) >= 2 per output, got {self.heatmap_sizes}"
            )
        self.with_heatmaps = list(self.with_heatmaps) if self.with_heatmaps is not None else [True] * n
        self.with_tags = list(self.with_tags) if self.with_tags is not None else [i == 0 for i in range(n)]
        if len(self.with_heatmaps) != n or len(self.with_tags) != n or not any(self.with_tags):
            raise ValueError(
                f"with_heatmaps {self.with_heatmaps} and with_tags {self.with_tags} need one flag per heatmap "
                f"size ({n}) and at least one output with tags"
            )
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive test scales such as [0.5, 1, 2], got {self.scales}")
        if self.blur_kernel and self.blur_kernel % 2 != 1:
            raise ValueError(f"blur_kernel must be odd (or 0 for no refinement), got {self.blur_kernel}")
        if self.size_divisor < 1 or self.size_rule not in SIZE_RULES:
            raise ValueError(
                f"size_divisor={self.size_divisor} must be a positive number of px and size_rule="
                f"{self.size_rule!r} one of {list(SIZE_RULES)}"
            )

    def check_output_size(self, output_sizes: Sequence[Sequence[int]], network: str) -> None:
        """Raise a clear error when the network's outputs ``[(width, height), ...]`` are not ``heatmap_sizes``."""
        measured = [(int(w), int(h)) for w, h in output_sizes]
        if measured != self.heatmap_sizes:
            raise ValueError(
                f"paradigm.codec heatmap sizes {[list(s) for s in self.heatmap_sizes]} do not fit the network: "
                f"{network} maps paradigm.input_size={list(self.input_size)} to outputs of "
                f"{[list(s) for s in measured]} (width, height). Pick the head that matches "
                "(paradigm/head=higherhrnet|simple), or set paradigm.codec.output_strides to the outputs' strides."
            )

    @property
    def tag_resolution(self) -> int:
        """Index of the output whose tags the AE loss trains (the first with tags)."""
        return self.with_tags.index(True)

    def output_channels(self, num_keypoints: int) -> list[int]:
        """Channels each output must have: K heatmaps and/or K tags."""
        return [
            num_keypoints * (int(h) + int(t)) for h, t in zip(self.with_heatmaps, self.with_tags, strict=True)
        ]

    # ---------------------------------------------------------------- encoding
    def encode(
        self, keypoints: np.ndarray, visible: np.ndarray
    ) -> dict[str, list[np.ndarray] | np.ndarray | int]:
        """Targets of one warped image from joints ``(N, K, 2)`` in input pixels and flags ``(N, K)``.

        Returns ``heatmaps`` (one ``(K, h, w)`` per resolution), ``keypoint_indices`` ``(max_people, K, 2)``
        at the tag resolution (rows beyond the people are zero) and ``people_truncated``, the number of
        labelled people beyond ``max_people`` left out of the tag loss.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        heatmaps = [
            encode_bottomup_heatmaps(keypoints / udp_stride(self.input_size, size), visible, size, self.sigma)
            for size in self.heatmap_sizes
        ]
        size = self.heatmap_sizes[self.tag_resolution]
        indices = encode_keypoint_indices(keypoints / udp_stride(self.input_size, size), visible, size)
        labelled = indices[..., 1].any(axis=1)
        indices = indices[labelled]
        num_joints = keypoints.shape[1]
        padded = np.zeros((self.max_people, num_joints, 2), dtype=np.int64)
        padded[: min(len(indices), self.max_people)] = indices[: self.max_people]
        return {
            "heatmaps": heatmaps,
            "keypoint_indices": padded,
            "people_truncated": max(len(indices) - self.max_people, 0),
        }

    # ---------------------------------------------------------------- decoding
    def test_inputs(self, image_bgr: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """A BGR whole image → its network input at each test scale and the image → input matrices
        (:func:`aidpose.geometry.inference.scale_inputs` with this codec's scales and padding)."""
        return scale_inputs(image_bgr, min(self.input_size), self.scales, self.size_divisor, self.size_rule)

    def merge_outputs(
        self, outputs: Sequence[torch.Tensor], num_keypoints: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One test input's outputs (lowest resolution first) → heatmaps (B, K, H, W) and tags (B, K, H, W, L)."""
        return merge_resolutions(
            outputs, num_keypoints, self.with_heatmaps, self.with_tags, align_corners=self.use_udp
        )

    def flip_back(
        self, outputs: tuple[torch.Tensor, torch.Tensor], flip_index: Sequence[int] | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Merged maps of a mirrored input → those of the original input (see :func:`flip_back`)."""
        return flip_back(*outputs, flip_index)

    def merge_flip(
        self,
        outputs: tuple[torch.Tensor, torch.Tensor],
        mirrored: tuple[torch.Tensor, torch.Tensor],
        flip_index: Sequence[int] | np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flip test on merged maps: heatmaps averaged, tags stacked (see :func:`merge_flip`)."""
        return merge_flip(*outputs, *self.flip_back(mirrored, flip_index))

    def merge_scales(
        self, heatmaps: Sequence[torch.Tensor], tags: Sequence[torch.Tensor], size: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-scale maps (in ``self.scales`` order) → one heatmap and tag map at ``size`` = (W, H)."""
        if len(heatmaps) != len(self.scales) or len(tags) != len(self.scales):
            raise ValueError(f"got maps of {len(heatmaps)} scales for test scales {self.scales}")
        if not self.tags_all_scales:
            if 1.0 not in self.scales:
                raise ValueError(f"tags_all_scales=false keeps scale 1's tags but scales are {self.scales}")
            tags = [tags[self.scales.index(1.0)]]
        return merge_scales(heatmaps, tags, size, align_corners=self.use_udp)

    def decode(
        self,
        outputs: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray],
        to_image: np.ndarray,
    ) -> Prediction:
        """People of one image from its merged maps ``outputs`` = (heatmaps ``(K, H, W)``, tags ``(K, H, W, L)``).

        ``to_image`` (2, 3) maps heatmap pixels to image pixels (``aidpose.codecs.udp_heatmap.heatmap_to_image_matrix``).
        People are scored by the mean heat of their grouped joints over all K joints (missing ones count 0,
        before filling, as HigherHRNet); at most ``max_people`` highest-scoring people are returned.
        """
        heat = _numpy(outputs[0])
        tag_maps = _numpy(outputs[1])
        num_joints = heat.shape[0]
        order = self.joint_order
        if order is None:
            order = COCO_JOINT_ORDER if num_joints == len(COCO_JOINT_ORDER) else range(num_joints)
        candidates = top_k_candidates(heatmap_nms(heat, self.nms_kernel), tag_maps, self.top_k)
        groups = group_by_tags(
            candidates, order, self.detection_threshold, self.tag_threshold, self.max_people
        )
        keypoints = groups.keypoints
        scores = keypoints[..., 2].mean(axis=1) if len(keypoints) else np.zeros(0, np.float32)
        keep = np.argsort(-scores, kind="stable")[: self.max_people]
        keypoints, scores, person_tags = keypoints[keep], scores[keep], groups.tags[keep]
        if self.dark_before_fill and len(keypoints):
            keypoints = self.refine_dark(heat, keypoints)
            if self.refine:
                missing = keypoints[..., 2] == 0
                tags = person_tags_at(tag_maps, keypoints)
                keypoints = fill_missing_joints(keypoints, tags, heat, tag_maps, candidates)
                filled = missing & (keypoints[..., 2] > 0)
                keypoints[filled, :2] = quarter_pixel_shift(heat, keypoints[..., :2])[filled]
        elif len(keypoints):
            if self.refine:
                keypoints = fill_missing_joints(keypoints, person_tags, heat, tag_maps, candidates)
            keypoints = self.refine_dark(heat, keypoints)
        image_xy = apply_affine(keypoints[..., :2], np.asarray(to_image, dtype=np.float64))
        out = np.concatenate([image_xy, keypoints[..., 2:3]], axis=-1).astype(np.float32)
        return Prediction(out, scores.astype(np.float32))

    def refine_dark(self, heatmaps: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """People ``(P, K, 3)`` with every joint's position refined by DARK-UDP (none with ``blur_kernel=0``)."""
        if self.blur_kernel:
            keypoints[..., :2] = refine_dark_udp(heatmaps, keypoints[..., :2], self.blur_kernel)
        return keypoints
