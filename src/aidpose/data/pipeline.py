"""The per-sample pipeline both paradigms share: draw the warp → read → warp (flip folded in) → drop → encode.

:class:`SampleDataset` runs it for every item; a paradigm's dataset (``TopDownDataset``: one person crop per
item, ``BottomUpDataset``: one whole image per item) says only which people an item has, how its warp is drawn
(and the smallest region it can draw) and what else its items carry. The warp is drawn before the image is read,
so the read (``aidpose.data.images.ImageReader``) decodes a JPEG only at the resolution the warp needs
(``decode="scaled"``) or takes it from the decoded-image cache (``aidpose.data.image_cache``). What the steps need
is here too: the per-item random stream (:class:`SampleKey`), the dropper protocol, glibc's malloc tuning and the
stage timer of ``scripts/bench_pipeline.py``.

Items are dicts of numpy arrays and scalars: ``image`` (H, W, 3) uint8 RGB, the warp's own output (no copy
into planes per sample), every target of ``codec.encode`` under its name, and the dropper's statistics
``visible_count`` / ``dropped_count`` (K,): per joint, the visible keypoints (v = 2, inside the input) and those
among them whose pixel the dropper hid. :func:`collate` batches them (the loaders' ``collate_fn``): the images
become the (B, 3, H, W) view of the stacked (B, H, W, 3) pixels, i.e. a channels-last batch that the model
normalises (and, unless it runs channels-last, lays out) on the device.
"""

from __future__ import annotations

import ctypes
import os
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from torch.utils.data import Dataset, default_collate

from aidpose.codecs.base import KeypointCodec
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.images import (
    ImageReader,
    check_decode_mode,
    check_image_size,
    reduced_image_matrix,
    reduction_factor,
    smallest_factor_per_file,
)
from aidpose.data.keypoints import get_layout
from aidpose.geometry.affine import apply_affine, udp_warp_matrix, warp_to_rgb
from aidpose.geometry.augment import AugmentationParams


class KeypointDropper(Protocol):
    """Drops information from a warped image (AID). May modify ``image`` in place.

    ``image`` is the uint8 HWC RGB network input, ``keypoints`` (M, 2) float input coordinates and
    ``visibility`` (M,) their COCO flags (0: not labelled, its coordinates are meaningless); returns the image
    and a bool mask (M,) of the keypoints it dropped (covered). ``aidpose.aid``'s droppers implement this.
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


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A batch of :class:`SampleDataset` items: the default collate, with the (B, H, W, 3) images as their
    (B, 3, H, W) view (channels-last strides; nothing is copied)."""
    batch = default_collate(list(items))
    batch["image"] = batch["image"].permute(0, 3, 1, 2)
    return batch


def as_sample_key(key: int | SampleKey | tuple[int, ...]) -> SampleKey:
    """A dataset key as a :class:`SampleKey` (a plain index: seed 0, epoch 0)."""
    return SampleKey(*key) if isinstance(key, tuple) else SampleKey(int(key))


class WarpedSample(NamedTuple):
    """One item after the warp, the flip and the dropper: what the codec encodes and the panels draw.

    Attributes:
        index: the record read (an unreadable image is replaced by the next readable one when skipping).
        image: (H, W, 3) uint8 RGB network input.
        keypoints: (N, K, 2) the item's people in input pixels (left/right swapped when flipped).
        visibility: (N, K) their COCO flags (0: not labelled).
        dropped: (N, K) bool, keypoints whose pixel the dropper hid.
        matrix: (2, 3) image → input matrix of the warp (full-resolution image pixels, whatever the decode).
        image_size: (width, height) of the image at full resolution.
    """

    index: int
    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    dropped: np.ndarray
    matrix: np.ndarray
    image_size: tuple[int, int]

    @property
    def visible(self) -> np.ndarray:
        """(N, K) keypoints visible in the input: v = 2 and inside it (half-pixel border included)."""
        h, w = self.image.shape[:2]
        x, y = self.keypoints[..., 0], self.keypoints[..., 1]
        return (self.visibility == 2) & (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


class SampleDataset(Dataset, ABC):
    """A COCO-format keypoint dataset read item by item through the shared pipeline.

    Args:
        ann_file, image_dir: COCO-format annotation file and the folder of its images.
        codec: the paradigm's codec: network input size (``codec.input_size``) and target encoding.
        layout: keypoint layout name (``aidpose.data.keypoints``).
        train: augmentation and dropper on (True) or the plain warp (False).
        augmentation: training augmentation (None: none); its ``sample`` gives the warp of an item.
        dropper: AID dropper applied to the warped training image (None: none).
        skip_unreadable_images: skip (and count in ``num_unreadable_skipped``) images that cannot be read,
            taking the next readable one; False: an unreadable image is an error.
        decode: ``"scaled"`` decodes a JPEG at 1/2, 1/4 or 1/8 when the item's warp maps at least that many image
            pixels onto one input pixel (``aidpose.data.images``); ``"full"`` always in full.
        cache: keep the decoded images for the run (``aidpose.data.image_cache``; None: decode every time).

    A subclass takes these arguments (and its own), sets ``files`` (the image file of every record) and
    ``image_sizes`` ((N, 2) their full (width, height) from the annotation file), implements :meth:`people`,
    :meth:`warp_params`, :meth:`smallest_warp_scale` and :meth:`item_fields`, and ends its ``__init__`` with
    :meth:`open_image_cache`. Each process that reads items calls ``tune_malloc()`` once.
    """

    files: Sequence[str]
    image_sizes: np.ndarray

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        codec: KeypointCodec,
        train: bool,
        layout: str = "coco",
        augmentation: Any | None = None,
        dropper: KeypointDropper | None = None,
        skip_unreadable_images: bool = False,
        decode: str = "full",
        cache: ImageCacheSettings | None = None,
    ) -> None:
        if dropper is not None and not callable(getattr(dropper, "drop", None)):
            raise TypeError(f"dropper {type(dropper).__name__} has no drop(image, keypoints, rng) method")
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.layout = get_layout(layout)
        self.codec = codec
        self.input_size = codec.input_size
        self.train = train
        self.augmentation = augmentation if train else None
        self.dropper = dropper if train else None
        self.image_reader = ImageReader(skip_unreadable_images)
        self.decode = check_decode_mode(decode)
        self.cache_settings = cache
        self.flip_index = self.layout.flip_index
        self.stage_timer: StageTimer | None = None
        self._malloc_pid: int | None = None

    @property
    def num_keypoints(self) -> int:
        return self.layout.num_keypoints

    @property
    def num_unreadable_skipped(self) -> int:
        """Images that could not be decoded and were replaced by another record (all workers)."""
        return self.image_reader.skipped

    # ---- the paradigm's part -----------------------------------------------------------------
    @abstractmethod
    def people(self, index: int) -> np.ndarray:
        """(N, K, 3) keypoints (x, y, v) in image pixels of record ``index``'s people."""

    @abstractmethod
    def warp_params(
        self, index: int, image_size: tuple[int, int], people: np.ndarray, rng: np.random.Generator | None
    ) -> AugmentationParams:
        """Centre, scale, rotation and flip of record ``index``'s warp (drawn from ``rng`` when training)."""

    @abstractmethod
    def smallest_warp_scale(self, index: int) -> np.ndarray:
        """The smallest region (w, h) in image px :meth:`warp_params` can draw for record ``index``."""

    @abstractmethod
    def item_fields(self, sample: WarpedSample, targets: dict[str, Any]) -> dict[str, Any]:
        """What the paradigm's items carry besides the image, the targets and the dropper's statistics."""

    # ---- the shared steps ----------------------------------------------------------------------
    def open_image_cache(self) -> None:
        """Build (or open) the decoded-image cache of ``cache``: called once the records are loaded, before
        loader workers fork (they share it)."""
        if self.cache_settings is not None:
            self.image_reader.cache = self.cache_settings.build(Path(self.ann_file).stem, *self.image_plan())

    def image_plan(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each image file, the decode factor every warp of its records allows (1 unless ``decode="scaled"``)
        and its full (width, height): what the image cache stores."""
        factors = [
            reduction_factor(self.smallest_warp_scale(i), self.input_size) if self.decode == "scaled" else 1
            for i in range(len(self.files))
        ]
        files, factors = smallest_factor_per_file(self.files, factors)
        size_of = dict(zip(map(str, self.files), self.image_sizes, strict=True))
        return files, factors, np.array([size_of[f] for f in files], dtype=np.int64).reshape(-1, 2)

    def sample(self, key: int | SampleKey) -> WarpedSample:
        """Draw the warp, read the image at the resolution it allows, warp (flip and decode reduction folded in,
        joints swapped left/right) and drop."""
        key = as_sample_key(key)
        if self._malloc_pid != os.getpid():  # once per (worker) process
            tune_malloc()
            self._malloc_pid = os.getpid()
        timer = self.stage_timer or _NO_TIMER
        timer.start()
        random = self.augmentation is not None or self.dropper is not None

        def plan(index: int) -> tuple[tuple[np.ndarray, AugmentationParams, Any], int]:
            # a fresh stream per plan: a record read in place of an unreadable one draws what it draws unskipped
            rng = key.rng() if random else None
            people = self.people(index)
            params = self.warp_params(index, tuple(self.image_sizes[index]), people, rng)
            timer.lap("augmentation")
            factor = reduction_factor(params.scale, self.input_size) if self.decode == "scaled" else 1
            return (people, params, rng), factor

        read, (people, params, rng) = self.image_reader.read_planned(self.files, key.index, plan)
        index = read.index
        width, height = (int(v) for v in self.image_sizes[index])
        check_image_size(read, self.files[index], (width, height), self.ann_file)
        timer.lap("decode")

        matrix = udp_warp_matrix(params.center, params.scale, params.rotation, self.input_size, params.flip)
        warped = warp_to_rgb(read.image, reduced_image_matrix(matrix, read.factor), self.input_size)
        num_people, num_joints = people.shape[:2]
        xy = apply_affine(people[..., :2].reshape(-1, 2), matrix).reshape(num_people, num_joints, 2)
        flags = people[..., 2]
        if params.flip:
            xy, flags = xy[:, self.flip_index], flags[:, self.flip_index]
        timer.lap("warp")

        dropped = np.zeros((num_people, num_joints), dtype=bool)
        if self.dropper is not None:
            warped, hit = self.dropper.drop(warped, xy.reshape(-1, 2), rng, visibility=flags.reshape(-1))
            hit = np.asarray(hit, dtype=bool)
            expected = (self.input_size[1], self.input_size[0], 3)
            if warped.shape != expected or hit.shape != (num_people * num_joints,):
                raise ValueError(
                    f"dropper {type(self.dropper).__name__}.drop returned image {warped.shape} and mask "
                    f"{hit.shape}; expected {expected} and ({num_people * num_joints},)"
                )
            dropped = hit.reshape(num_people, num_joints)
        timer.lap("dropper")
        return WarpedSample(index, warped, xy, flags, dropped, matrix, (width, height))

    def item(self, sample: WarpedSample) -> dict[str, Any]:
        """The item of a warped sample: image, every codec target under its name, the dropper's statistics
        and the paradigm's fields."""
        timer = self.stage_timer or _NO_TIMER
        targets = self.codec.encode(sample.keypoints, sample.visibility)
        timer.lap("target")
        visible = sample.visible
        item = {
            "image": sample.image,
            **targets,
            "visible_count": visible.sum(0, dtype=np.int64),
            "dropped_count": (visible & sample.dropped).sum(0, dtype=np.int64),
            **self.item_fields(sample, targets),
        }
        timer.lap("rest")
        return item

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """One item; its random draws come from the generator of ``key`` (see :class:`SampleKey`)."""
        return self.item(self.sample(key))

    collate = staticmethod(collate)
