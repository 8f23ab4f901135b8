"""The per-sample pipeline both paradigms share: decode → warp (flip folded in) → drop → encode.

:class:`SampleDataset` runs it for every item; a paradigm's dataset (``TopDownDataset``: one person crop per
item, ``BottomUpDataset``: one whole image per item) says only which people an item has, how its warp is drawn
and what else its items carry. What the steps need is here too: the per-item random stream
(:class:`SampleKey`), the image reader that skips and counts unreadable files, the dropper protocol, glibc's
malloc tuning and the stage timer of ``scripts/bench_pipeline.py``.

Items are dicts of numpy arrays and scalars that batch with the default collate: ``image`` (3, H, W) uint8 RGB
(the model normalises on the device), every target of ``codec.encode`` under its name, and the dropper's
statistics ``visible_count`` / ``dropped_count`` (K,): per joint, the visible keypoints (v = 2, inside the
input) and those among them whose pixel the dropper hid.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np
from torch.utils.data import Dataset

from aidpose.codecs.base import KeypointCodec
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


class ImageReader:
    """Decodes a dataset's image files (BGR) by index. With ``skip_unreadable``, an unreadable file is replaced
    by the next readable one and counted in :attr:`skipped` (shared by every loader worker process); without,
    it is an error naming the file."""

    def __init__(self, skip_unreadable: bool) -> None:
        self.skip_unreadable = skip_unreadable
        self._skipped = multiprocessing.Value("q", 0)

    @property
    def skipped(self) -> int:
        """Unreadable files skipped so far, in every process."""
        return int(self._skipped.value)

    def read(self, files: Sequence[str], index: int) -> tuple[np.ndarray, int]:
        """The image ``files[index]`` or, skipping, the next readable one; and the index it came from."""
        for attempt in range(len(files)):
            i = (index + attempt) % len(files)
            image = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if image is not None:
                return image, i
            if not self.skip_unreadable:
                raise OSError(
                    f"cannot read image {files[i]} (missing, truncated or not an image). Set "
                    "loader.skip_unreadable_images=true to skip (and count) unreadable images."
                )
            with self._skipped.get_lock():
                self._skipped.value += 1
        raise OSError(f"none of the dataset's images can be read (the first: {files[0]})")


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
        matrix: (2, 3) image → input matrix of the warp.
        image_size: (width, height) of the decoded image.
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

    A subclass takes these arguments (and its own), sets ``files`` (the image file of every record) and implements
    :meth:`people`, :meth:`warp_params` and :meth:`item_fields`. Each process that reads items calls
    ``tune_malloc()`` once.
    """

    files: Sequence[str]

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
    def item_fields(self, sample: WarpedSample, targets: dict[str, Any]) -> dict[str, Any]:
        """What the paradigm's items carry besides the image, the targets and the dropper's statistics."""

    # ---- the shared steps ----------------------------------------------------------------------
    def sample(self, key: int | SampleKey) -> WarpedSample:
        """Decode, draw the warp, warp (flip folded in, joints swapped left/right) and drop."""
        key = as_sample_key(key)
        if self._malloc_pid != os.getpid():  # once per (worker) process
            tune_malloc()
            self._malloc_pid = os.getpid()
        timer = self.stage_timer or _NO_TIMER
        timer.start()
        image, index = self.image_reader.read(self.files, key.index)
        timer.lap("decode")
        height, width = image.shape[:2]
        people = self.people(index)
        rng = key.rng() if self.augmentation is not None or self.dropper is not None else None
        params = self.warp_params(index, (width, height), people, rng)
        timer.lap("augmentation")

        matrix = udp_warp_matrix(params.center, params.scale, params.rotation, self.input_size, params.flip)
        warped = warp_to_rgb(image, matrix, self.input_size)
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
            "image": np.ascontiguousarray(sample.image.transpose(2, 0, 1)),  # CHW
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
