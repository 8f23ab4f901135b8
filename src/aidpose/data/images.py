"""Reading a dataset's image files: JPEG decoding at the resolution a crop needs, damaged files, the reader.

A crop that maps at least 2, 4 or 8 image pixels onto one input pixel loses nothing if its JPEG is decoded at
1/2, 1/4 or 1/8 of the size: libjpeg-turbo (through OpenCV's ``IMREAD_REDUCED_COLOR_*``) then reconstructs only
the low frequencies of each 8×8 DCT block, which is faster and anti-aliased. Reduced pixel ``x'`` is the
centre of its ``r × r`` block of full-resolution pixels, ``x = r·x' + (r - 1) / 2``, on both axes and whatever
the image size (a ``ceil(size / r)`` image; the last row or column holds the encoder's edge padding):
:func:`reduced_image_matrix` folds that into the warp. The UDP rule ``(size - 1) / (size' - 1)`` would misplace
the reduced image by up to ``(r - 1) / 2`` pixels; tests/test_images.py measures both on the fixture photos.

Decoder: OpenCV. simplejpeg and PyTurboJPEG (the same libjpeg-turbo) decode these photos to identical pixels.
simplejpeg looks 1.1-1.5× faster at full size in a bare process, but that is OpenCV's fresh ``mmap`` of each
~1 MB image: in a process that ran ``tune_malloc`` (every dataset's) the two decode the fixture photos at the
same speed (0.93-1.14×, median 1.04, 2026-12-04) and simplejpeg is only faster on small images (1.3× on
SynthPose's 256² JPEGs, whose decode is not what limits a run). It would also need OpenCV beside it for EXIF
orientation (OpenCV turns the image upright), CMYK and non-JPEG files, and PyTurboJPEG a system libjpeg-turbo 3:
neither earns a dependency.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import cv2
import numpy as np

if TYPE_CHECKING:
    from aidpose.data.image_cache import ImageCache

DECODE_MODES = ("full", "scaled")
REDUCTIONS = (8, 4, 2)
"""The reduced resolutions libjpeg-turbo decodes in the DCT domain (1/8, 1/4, 1/2), largest first."""
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class UnreadableImageError(OSError):
    """An image file that is missing, not an image, or damaged; the message names the file and why."""

    def __init__(self, file: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot read image {file}: {reason}")
        self.file = str(file)
        self.reason = reason


def check_decode_mode(decode: str) -> str:
    """``decode`` if it is one of :data:`DECODE_MODES`, else an error naming ``loader.decode``."""
    if decode not in DECODE_MODES:
        raise ValueError(f"loader.decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    return decode


def reduction_factor(scale: Sequence[float], output_size: Sequence[int], max_factor: int = 8) -> int:
    """How far the crop of ``scale`` = (w, h) image px onto ``output_size`` = (w, h) px may be decoded reduced.

    Under UDP the crop maps ``scale`` onto ``(w - 1, h - 1)`` output px, so it covers ``scale / (size - 1)``
    image px per output px on each axis (rotation does not change it). Returns the largest of 8, 4, 2 (at most
    ``max_factor``) that both axes reach, else 1.
    """
    w, h = output_size
    per_pixel = min(float(scale[0]) / (w - 1), float(scale[1]) / (h - 1))
    return next((r for r in REDUCTIONS if r <= max_factor and per_pixel >= r), 1)


def reduced_image_matrix(matrix: np.ndarray, factor: int) -> np.ndarray:
    """The 2×3 warp ``matrix`` (full image → crop) for the image decoded at ``1 / factor``.

    ``matrix`` composed with reduced → full pixels, ``x = factor·x' + (factor - 1) / 2`` (see the module
    docstring). Keypoints and the crop's inverse matrix stay in full-image pixels: only the warp changes.
    """
    if factor == 1:
        return matrix
    # float64 arithmetic in Python floats: cheaper than numpy's for a 2×3 matrix per sample
    rows = np.asarray(matrix, dtype=np.float64).tolist()
    return np.array(
        [[a * factor, b * factor, t + (a + b) * (factor - 1) / 2] for a, b, t in rows], dtype=np.float32
    )


def jpeg_is_truncated(data: bytes) -> bool:
    """True for JPEG data (it starts with the start-of-image marker) whose last bytes, trailing zero padding
    aside, are not the end-of-image marker ``FF D9``: the file was cut short (libjpeg decodes it without an
    error, greying the missing rows)."""
    return data[:2] == JPEG_START and not data.rstrip(b"\0").endswith(JPEG_END)


def decode_image(data: bytes, factor: int = 1, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode an image file's bytes into BGR uint8 (H, W, 3) and the factor it was decoded at.

    A JPEG is decoded at ``1 / factor`` (``ceil`` of each side); other formats in full (factor 1), since their
    reduced decode is a full one plus a resize. Raises :class:`UnreadableImageError` naming ``name`` for data
    that is not an image and for a truncated JPEG.
    """
    if factor not in _FLAGS:
        raise ValueError(f"decode factor must be one of {sorted(_FLAGS)}, got {factor}")
    jpeg = data[:2] == JPEG_START
    if jpeg and jpeg_is_truncated(data):
        raise UnreadableImageError(name, "damaged JPEG, its end-of-image marker is missing (truncated file?)")
    factor = factor if jpeg else 1
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _FLAGS[factor])
    if image is None:
        raise UnreadableImageError(name, "not an image OpenCV can decode, or damaged")
    return image, factor


def decode_file(file: str | os.PathLike, factor: int = 1) -> tuple[np.ndarray, int]:
    """:func:`decode_image` of a file; a missing or unreadable file is an :class:`UnreadableImageError` too."""
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as err:
        raise UnreadableImageError(file, f"{type(err).__name__}: {err.strerror or err}") from err
    return decode_image(data, factor, str(file))


class ReadImage(NamedTuple):
    """An image read for a sample: BGR pixels, the index of the file it came from, its decode factor."""

    image: np.ndarray
    index: int
    factor: int


Plan = TypeVar("Plan")


def check_image_size(read: ReadImage, file: str, size: tuple[int, int], ann_file: str) -> None:
    """The image read is the size (width, height) its annotation says, decoded at ``read.factor`` (each side
    ``ceil(size / factor)``), else an error naming the file: the warp is drawn from the annotation's size."""
    width, height = size
    expected = (-(-height // read.factor), -(-width // read.factor))
    if read.image.shape[:2] != expected:
        at = "" if read.factor == 1 else f" at 1/{read.factor} (expected {expected[1]}×{expected[0]})"
        raise ValueError(
            f"image {file} decodes to {read.image.shape[1]}×{read.image.shape[0]} px{at}, but {ann_file} "
            f"gives it width={width}, height={height}: correct the image's entry in the annotation file"
        )


class ImageReader:
    """Decodes a dataset's image files (BGR) by index, from ``cache`` when it holds them.

    With ``skip_unreadable``, an unreadable file (missing, not an image, damaged) is replaced by the next
    readable one and counted in :attr:`skipped` (shared by every loader worker process); without, it is an
    error naming the file. :attr:`decoded` counts this process's reads by decode factor.
    """

    def __init__(self, skip_unreadable: bool, cache: ImageCache | None = None) -> None:
        self.skip_unreadable = skip_unreadable
        self.cache = cache
        self.decoded: Counter[int] = Counter()
        self._skipped = multiprocessing.Value("q", 0)

    @property
    def skipped(self) -> int:
        """Unreadable files skipped so far, in every process."""
        return int(self._skipped.value)

    def read(self, files: Sequence[str], index: int, factor: int = 1) -> ReadImage:
        """The image ``files[index]`` or, skipping, the next readable one, decoded at ``1 / factor`` or less
        (a cached image at its stored factor when that is not more than ``factor``)."""
        for attempt in range(len(files)):
            i = (index + attempt) % len(files)
            try:
                image, got = self._decode(str(files[i]), factor)
            except UnreadableImageError as err:
                if not self.skip_unreadable:
                    raise UnreadableImageError(
                        err.file,
                        f"{err.reason}. Set loader.skip_unreadable_images=true to skip (and count) unreadable "
                        "images",
                    ) from err
                with self._skipped.get_lock():
                    self._skipped.value += 1
                continue
            self.decoded[got] += 1
            return ReadImage(image, i, got)
        raise OSError(f"none of the dataset's images can be read (the first: {files[0]})")

    def read_planned(
        self, files: Sequence[str], index: int, plan: Callable[[int], tuple[Plan, int]]
    ) -> tuple[ReadImage, Plan]:
        """Read the image of ``index`` for the sample ``plan(index)`` = (its parameters, the factor they allow).

        When ``files[index]`` is skipped for another file, the plan is redrawn for that one and, if it allows
        less reduction than the image was decoded at, the (now known readable) file is read again.
        """
        params, factor = plan(index)
        read = self.read(files, index, factor)
        if read.index != index:
            params, factor = plan(read.index)
            if factor < read.factor:
                read = self.read(files, read.index, factor)
        return read, params

    def _decode(self, file: str, factor: int) -> tuple[np.ndarray, int]:
        cached = self.cache.get(file) if self.cache is not None else None
        if cached is not None and cached[1] <= factor:
            return cached
        return decode_file(file, factor)


def smallest_factor_per_file(files: Sequence[str], factors: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """The distinct ``files`` (in order of first appearance) and, for each, the smallest of the ``factors`` of
    the samples that read it: the reduction every one of its crops allows."""
    smallest: dict[str, int] = {}
    for file, factor in zip(files, factors, strict=True):
        smallest[str(file)] = min(int(factor), smallest.get(str(file), int(factor)))
    return list(smallest), np.array(list(smallest.values()), dtype=np.int64)
