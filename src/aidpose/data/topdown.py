"""``TopDownDataset``: one person crop per item, UDP geometry, optional AID dropper, UDP heatmap targets.

Per item: sample the augmentation, read the image (``aidpose.data.images``: at the reduction the crop allows,
from the decoded-image cache when there is one), warp once with the UDP matrix (flip and reduction folded in),
let the dropper drop information from the crop, encode the heatmap targets. Items
are dicts of numpy arrays and scalars; the default collate turns them into tensors. Images stay uint8
CHW RGB; the model normalises the batch on the device.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from torch.utils.data import Dataset

from aidpose.codecs.udp_heatmap import UDPHeatmapCodec
from aidpose.data.coco import load_instances
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.images import (
    ImageReader,
    check_decode_mode,
    reduced_image_matrix,
    reduction_factor,
    smallest_factor_per_file,
)
from aidpose.data.keypoints import get_layout
from aidpose.geometry.affine import (
    apply_affine,
    box_to_center_scale,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)
from aidpose.geometry.augment import TopDownAugmentation


class KeypointDropper(Protocol):
    """Drops information from a warped crop (AID). May modify ``image`` in place.

    ``image`` is the uint8 HWC RGB crop, ``keypoints`` (K, 2) float crop coordinates and ``visibility``
    (K,) their COCO flags (0: not labelled, its coordinates are meaningless); returns the image and a bool
    mask (K,) of the keypoints it dropped (covered). ``aidpose.aid``'s droppers implement this.
    """

    def drop(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        rng: np.random.Generator,
        *,
        visibility: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


class SampleKey(NamedTuple):
    """A training item and what its random draws depend on: one generator per (seed, epoch, index).

    The training sampler yields these keys (``aidpose.training.datamodule.EpochSampler``), so a sample's
    flips, scales, rotations and dropper regions are a function of the run's seed, the epoch and the item:
    the same whichever rank or loader worker reads it, with any number of workers, and after a resume;
    different items (so different ranks' and workers' items) draw from different streams. A plain ``int``
    index is ``SampleKey(index)`` (seed 0, epoch 0).
    """

    index: int
    seed: int = 0
    epoch: int = 0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, self.index]))


class StageTimer:
    """Accumulates wall time per pipeline stage (set ``dataset.stage_timer``; scripts/bench_pipeline.py)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now


class _NoTimer(StageTimer):
    def start(self) -> None:
        pass

    def lap(self, stage: str) -> None:
        pass


_NO_TIMER = _NoTimer()
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold: int = 16 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Let glibc keep image-sized buffers on its heap (``mallopt``); returns False where not glibc.

    By default glibc serves ~1 MB decode/warp buffers with fresh ``mmap``s and returns them on free,
    so every sample faults its pages in again (up to ~0.8 ms per sample here). Raising the mmap and
    trim thresholds (the ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` settings) reuses them.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


class TopDownDataset(Dataset):
    """Top-down person crops of a COCO-format keypoint dataset.

    Args:
        ann_file, image_dir: COCO-format annotation file and the folder of its images.
        train: augmentation and dropper on (True) or plain centred crops (False).
        codec: the run's heatmap codec: crop size (``codec.input_size``) and target encoding.
        layout: keypoint layout name (``aidpose.data.keypoints``).
        augmentation: training augmentation (None: none).
        dropper: AID dropper applied to training crops (None: none).
        boxes: ``"gt"`` (annotated boxes) or ``"detections"`` (boxes of ``det_file``, evaluation only).
        det_score_thr, min_box_area: detection box filters.
        padding: box → crop padding factor.
        skip_unreadable_images: skip and count missing/unreadable images instead of raising.
        decode: ``"scaled"`` decodes a JPEG at 1/2, 1/4 or 1/8 when the sample's crop maps at least that many
            image pixels onto one input pixel (``aidpose.data.images``); ``"full"`` always in full.
        cache: keep the decoded images (``aidpose.data.image_cache``; None: decode every time).

    Each process that reads items calls ``tune_malloc()`` once (faster image buffers under glibc).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        train: bool,
        codec: UDPHeatmapCodec,
        layout: str = "coco",
        augmentation: TopDownAugmentation | None = None,
        dropper: KeypointDropper | None = None,
        boxes: str = "gt",
        det_file: str | os.PathLike | None = None,
        det_score_thr: float = 0.0,
        min_box_area: float = 0.0,
        padding: float = 1.25,
        skip_unreadable_images: bool = False,
        decode: str = "full",
        cache: ImageCacheSettings | None = None,
    ) -> None:
        if train and boxes != "gt":
            raise ValueError(
                "training needs annotated boxes: set boxes='gt' (boxes='detections' is for evaluation)"
            )
        if dropper is not None and not callable(getattr(dropper, "drop", None)):
            raise TypeError(f"dropper {type(dropper).__name__} has no drop(image, keypoints, rng) method")
        self.layout = get_layout(layout)
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.train = train
        self.codec = codec
        self.input_size = codec.input_size
        self.augmentation = augmentation if train else None
        self.dropper = dropper if train else None
        self.image_reader = ImageReader(skip_unreadable_images)
        self.coco, self.records, self.summary = load_instances(
            ann_file,
            image_dir,
            num_keypoints=self.layout.num_keypoints,
            layout=layout,
            boxes=boxes,
            det_file=det_file,
            det_score_thr=det_score_thr,
            min_box_area=min_box_area,
            skip_unreadable_images=skip_unreadable_images,
        )
        self.crop_shape = (self.input_size[1], self.input_size[0], 3)
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.centers, self.scales = box_to_center_scale(self.records.bbox, self.aspect_ratio, padding)
        self.flip_index = self.layout.flip_index
        self.upper_body_ids = self.layout.upper_body_ids
        self.decode = check_decode_mode(decode)
        if cache is not None:
            self.image_reader.cache = cache.build(Path(ann_file).stem, *self.image_plan())
        self._malloc_pid: int | None = None
        self.stage_timer: StageTimer | None = None

    @property
    def num_keypoints(self) -> int:
        return self.layout.num_keypoints

    @property
    def num_unreadable_skipped(self) -> int:
        """Images that could not be decoded and were replaced by another instance (all workers)."""
        return self.image_reader.skipped

    def __len__(self) -> int:
        return len(self.records)

    def image_plan(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each image file, the decode factor all its samples allow (1 unless ``decode="scaled"``), and its
        (width, height) from the annotation file: what the image cache stores."""
        factors = np.ones(len(self), dtype=np.int64)
        if self.decode == "scaled":
            scales = self.scales
            if self.augmentation is not None:
                smallest = self.augmentation.smallest_scale
                scales = [smallest(k, s, self.aspect_ratio, self.upper_body_ids)
                          for k, s in zip(self.records.keypoints, self.scales, strict=True)]  # fmt: skip
            factors = np.array([reduction_factor(s, self.input_size) for s in scales])
        files, factors = smallest_factor_per_file(self.records.file, factors)
        image_of = dict(zip(self.records.file, self.records.image_id, strict=True))
        sizes = np.array([[self.coco.imgs[int(image_of[f])][k] for k in ("width", "height")] for f in files])
        return files, factors, sizes

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        key = SampleKey(*key) if isinstance(key, tuple) else SampleKey(int(key))
        if self._malloc_pid != os.getpid():  # once per (worker) process
            tune_malloc()
            self._malloc_pid = os.getpid()
        timer = self.stage_timer or _NO_TIMER
        timer.start()
        rng = key.rng() if self.augmentation is not None or self.dropper is not None else None

        def plan(i: int) -> tuple[tuple[np.ndarray, np.ndarray, float, bool], int]:
            center, scale, rotation, flip = self.centers[i], self.scales[i], 0.0, False
            if self.augmentation is not None:
                params = self.augmentation.sample(
                    rng, self.records.keypoints[i], center, scale, self.aspect_ratio, self.upper_body_ids
                )
                center, scale, rotation, flip = params.center, params.scale, params.rotation, params.flip
            timer.lap("augmentation")
            factor = reduction_factor(scale, self.input_size) if self.decode == "scaled" else 1
            return (center, scale, rotation, flip), factor

        read, (center, scale, rotation, flip) = self.image_reader.read_planned(
            self.records.file, key.index, plan
        )
        index = read.index
        timer.lap("decode")
        keypoints = self.records.keypoints[index]

        matrix = udp_warp_matrix(center, scale, rotation, self.input_size, flip)
        crop = warp_to_rgb(read.image, reduced_image_matrix(matrix, read.factor), self.input_size)
        xy = apply_affine(keypoints[:, :2], matrix)
        flags = keypoints[:, 2]
        if flip:
            xy, flags = xy[self.flip_index], flags[self.flip_index]
        timer.lap("warp")

        if self.dropper is None:
            dropped = np.zeros(self.num_keypoints, dtype=bool)
        else:
            crop, dropped = self.dropper.drop(crop, xy, rng, visibility=flags)
            dropped = np.asarray(dropped, dtype=bool)
            if crop.shape != self.crop_shape or dropped.shape != (self.num_keypoints,):
                raise ValueError(
                    f"dropper {type(self.dropper).__name__}.drop returned image {crop.shape} and mask "
                    f"{dropped.shape}; expected {self.crop_shape} and ({self.num_keypoints},)"
                )
        timer.lap("dropper")

        target, target_weight = self.codec.encode(xy, (flags > 0).astype(np.float32))
        timer.lap("target")

        w, h = self.input_size
        inside = (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
        item = {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "target": target,
            "target_weight": target_weight,
            "dropped": dropped,
            "visible": (flags == 2) & inside,
            "image_id": np.int64(self.records.image_id[index]),
            "ann_id": np.int64(self.records.ann_id[index]),
            "inv_affine": invert_affine(matrix).astype(np.float32),
            "bbox_score": np.float32(self.records.score[index]),
            "area": np.float32(self.records.area[index]),
            "index": np.int64(index),
        }
        timer.lap("rest")
        return item
