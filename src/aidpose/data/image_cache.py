"""Decoded images kept for a dataset's whole run (``loader.cache=none|memory|disk``).

Each file is decoded once, at the factor every one of its crops allows (1 with ``loader.decode=full``), and
stored with the reason it could not be read when it could not (so unreadable files are skipped and counted,
or raised, exactly as without the cache).

- ``memory``: the decoded arrays in this process, built when the dataset is made, before the loader forks its
  workers: they share the pages copy-on-write (the arrays are read-only, so nothing copies them). Each DDP
  rank holds its own copy.
- ``disk``: a memory-mapped store in ``loader.cache_dir``, one folder per dataset and decode settings (named
  by a hash of the files, their sizes and modification times, and the factors): the first process to need
  it builds it under a file lock into a temporary folder that is renamed into place when complete; the other
  ranks wait and then map it, and every process (workers, ranks, later runs) reads the same pages of the
  operating system's cache. It is never stale: a changed file or setting names another folder.

A cache that would not fit is refused before anything is decoded: its size is estimated from the images'
sizes in the annotation file and compared with ``loader.cache_max_gb`` and the memory available or the free
space of ``loader.cache_dir``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aidpose.data.images import UnreadableImageError, decode_file

CACHE_KINDS = ("none", "memory", "disk")
FORMAT_VERSION = 1
GIB = 1 << 30


def cache_key(files: Sequence[str], factors: Sequence[int]) -> str:
    """Hash of what the cache's content depends on: each file's path, size and modification time (a missing
    file counts as such) and the factor it is decoded at."""
    digest = hashlib.sha256(f"aidpose image cache v{FORMAT_VERSION}".encode())
    for file, factor in zip(files, factors, strict=True):
        try:
            stat = os.stat(file)
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            signature = "missing"
        digest.update(f"\0{os.path.abspath(file)}\0{signature}\0{int(factor)}".encode())
    return digest.hexdigest()[:20]


def cache_bytes(sizes: np.ndarray, factors: Sequence[int]) -> int:
    """Bytes of the BGR images of ``sizes`` (N, 2) = (width, height) decoded at ``factors``."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    factors = np.asarray(factors, dtype=np.int64)
    return int((-(-sizes[:, 0] // factors) * -(-sizes[:, 1] // factors) * 3).sum())


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; free pages where that is unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(kind: str, need: int, available: int, max_gb: float | None, name: str, where: str) -> None:
    """Refuse a cache of ``need`` bytes that exceeds ``available`` or ``loader.cache_max_gb``."""
    limit = available if max_gb is None else min(available, int(max_gb * GIB))
    if need <= limit:
        return
    given = "" if max_gb is None else f", loader.cache_max_gb={max_gb}"
    other = "loader.cache=disk (a memory-mapped store)" if kind == "memory" else "another loader.cache_dir"
    raise ValueError(
        f"loader.cache={kind}: the decoded images of {name} need about {need / GIB:.2f} GiB, more than the "
        f"{limit / GIB:.2f} GiB {where} allows{given}. Use {other}, raise loader.cache_max_gb, or "
        "loader.cache=none."
    )


def _decode_entry(job: tuple[str, int]) -> tuple[np.ndarray | None, int, str]:
    file, factor = job
    try:
        image, got = decode_file(file, factor)
    except UnreadableImageError as err:
        return None, 0, err.reason
    return image, got, ""


def decode_all(files: Sequence[str], factors: Sequence[int], workers: int) -> Iterator[tuple]:
    """``(image or None, factor, reason unreadable)`` per file, in order; decoded by ``workers`` processes."""
    jobs = list(zip(map(str, files), map(int, factors), strict=True))
    if workers <= 0:
        yield from map(_decode_entry, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_decode_entry, jobs, chunksize=16)


class ImageCache(ABC):
    """Decoded images by file path; :meth:`get` is what ``ImageReader`` asks first."""

    def __init__(self, files: Sequence[str], factors: np.ndarray, reasons: dict[int, str]) -> None:
        self.rows = {str(f): i for i, f in enumerate(files)}
        self.factors = np.asarray(factors, dtype=np.int64)
        self.reasons = reasons

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, file: str) -> tuple[np.ndarray, int] | None:
        """The stored image of ``file`` (read-only) and its decode factor; None if it is not in the cache.
        A file stored as unreadable raises :class:`UnreadableImageError` with the reason found when built."""
        row = self.rows.get(file)
        if row is None:
            return None
        if row in self.reasons:
            raise UnreadableImageError(file, self.reasons[row])
        return self.pixels(row), int(self.factors[row])

    @abstractmethod
    def pixels(self, row: int) -> np.ndarray:
        """The image stored in ``row``."""


class MemoryImageCache(ImageCache):
    """The decoded images as read-only arrays of this process."""

    def __init__(self, files: Sequence[str], factors: Sequence[int], workers: int = 0) -> None:
        images, got, reasons = [], [], {}
        for row, (image, factor, reason) in enumerate(decode_all(files, factors, workers)):
            if image is None:
                reasons[row] = reason
            else:
                image.setflags(write=False)
            images.append(image)
            got.append(factor)
        super().__init__(files, np.array(got), reasons)
        self.images = images

    def pixels(self, row: int) -> np.ndarray:
        return self.images[row]


class DiskImageCache(ImageCache):
    """A store folder (``pixels.u8``: the images back to back; ``index.npy``: offset, height, width and factor
    per file; ``meta.json``: the files and the reasons the unreadable ones are), memory-mapped read-only on
    first use in each process."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text())
        self.index = np.load(self.folder / "index.npy")
        super().__init__(meta["files"], self.index[:, 3], {int(k): v for k, v in meta["unreadable"].items()})
        self.builder_pid = int(meta["builder_pid"])
        self._pixels: np.ndarray | None = None

    def pixels(self, row: int) -> np.ndarray:
        if self._pixels is None:
            self._pixels = np.memmap(self.folder / "pixels.u8", dtype=np.uint8, mode="r")
        offset, height, width, _ = (int(v) for v in self.index[row])
        return self._pixels[offset : offset + height * width * 3].reshape(height, width, 3)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}  # each process maps the file itself


def write_store(folder: Path, files: Sequence[str], factors: Sequence[int], workers: int) -> None:
    """Decode ``files`` into a new store ``folder`` (see :class:`DiskImageCache`)."""
    folder.mkdir(parents=True)
    index = np.zeros((len(files), 4), dtype=np.int64)
    unreadable: dict[str, str] = {}
    offset = 0
    with open(folder / "pixels.u8", "wb") as out:
        for row, (image, factor, reason) in enumerate(decode_all(files, factors, workers)):
            if image is None:
                unreadable[str(row)] = reason
                continue
            out.write(np.ascontiguousarray(image).data)
            index[row] = (offset, image.shape[0], image.shape[1], factor)
            offset += image.nbytes
    np.save(folder / "index.npy", index)
    meta = {"files": [str(f) for f in files], "unreadable": unreadable, "builder_pid": os.getpid()}
    (folder / "meta.json").write_text(json.dumps(meta))


def open_disk_cache(
    root: str | os.PathLike,
    name: str,
    files: Sequence[str],
    factors: Sequence[int],
    sizes: np.ndarray,
    max_gb: float | None = None,
    workers: int = 0,
) -> DiskImageCache:
    """The store of these files and factors under ``root``: reused when it exists, else built atomically
    (one process at a time under a lock; a half-built store never has the final name)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{name}-{cache_key(files, factors)}"
    with open(root / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "meta.json").is_file():
            check_fits("disk", cache_bytes(sizes, factors), shutil.disk_usage(root).free, max_gb, name,
                       f"free space in {root}")  # fmt: skip
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
            try:
                write_store(tmp / "store", files, factors, workers)
                os.rename(tmp / "store", folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return DiskImageCache(folder)


@dataclass(frozen=True)
class ImageCacheSettings:
    """The ``loader.cache*`` options: which cache (``kind``), where disk stores live, the most it may take
    (``max_gb``; None: the available memory or free disk), and how many processes decode while building."""

    kind: str = "none"
    cache_dir: str = "decoded_images"
    max_gb: float | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in CACHE_KINDS:
            raise ValueError(f"loader.cache must be one of {', '.join(CACHE_KINDS)}, got {self.kind!r}")
        if self.max_gb is not None and not self.max_gb > 0:
            raise ValueError(f"loader.cache_max_gb must be > 0 or null, got {self.max_gb}")

    def build(
        self, name: str, files: Sequence[str], factors: Sequence[int], sizes: np.ndarray
    ) -> ImageCache | None:
        """The cache of ``files`` decoded at ``factors`` (``sizes`` (N, 2): their full (width, height), for the
        size check), or None for ``kind='none'``. ``name`` names the dataset in messages and folders."""
        if self.kind == "none":
            return None
        if self.kind == "memory":
            check_fits("memory", cache_bytes(sizes, factors), available_memory(), self.max_gb, name,
                       "available memory")  # fmt: skip
            return MemoryImageCache(files, factors, self.workers)
        return open_disk_cache(self.cache_dir, name, files, factors, sizes, self.max_gb, self.workers)
