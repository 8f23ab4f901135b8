"""Decoded-image caches (aidpose.data.image_cache): keying, atomic build, reuse, refusal, reads from workers."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

import aidpose.data.image_cache as image_cache
from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.image_cache import (
    DiskImageCache,
    ImageCacheSettings,
    MemoryImageCache,
    cache_bytes,
    cache_key,
    open_disk_cache,
)
from aidpose.data.images import UnreadableImageError, decode_file
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.augment import TopDownAugmentation

CODEC = UDPHeatmapCodec(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)


@pytest.fixture
def photos(coco_mini: Path, tmp_path: Path) -> Path:
    """A copy of coco_mini the test may change."""
    shutil.copytree(coco_mini, tmp_path / "coco_mini")
    return tmp_path / "coco_mini"


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.glob("*.jpg"))


def _sizes(files: list[str]) -> np.ndarray:
    return np.array([decode_file(f)[0].shape[1::-1] for f in files])


def test_the_key_follows_files_their_content_and_factors(photos: Path) -> None:
    files = _files(photos)
    key = cache_key(files, [1, 1, 2, 1])
    assert cache_key(files, [1, 1, 2, 1]) == key
    assert cache_key(files, [1, 1, 1, 1]) != key  # another decode setting
    assert cache_key(files[:3], [1, 1, 2]) != key
    stat = os.stat(files[0])
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # the file changed
    assert cache_key(files, [1, 1, 2, 1]) != key
    assert cache_bytes(np.array([[640, 425], [500, 333]]), [2, 1]) == 320 * 213 * 3 + 500 * 333 * 3


def test_memory_and_disk_caches_hold_the_decoded_images_read_only(photos: Path, tmp_path: Path) -> None:
    files = _files(photos)
    factors = [1, 2, 4, 8]
    memory = MemoryImageCache(files, factors)
    disk = open_disk_cache(tmp_path / "cache", "mini", files, factors, _sizes(files))
    for cache in (memory, disk):
        assert len(cache) == 4 and cache.get("elsewhere.jpg") is None
        for file, factor in zip(files, factors, strict=True):
            image, got = cache.get(file)
            assert got == factor and not image.flags.writeable
            np.testing.assert_array_equal(image, decode_file(file, factor)[0])


def test_a_disk_store_is_reused_not_rebuilt(photos: Path, tmp_path: Path, monkeypatch) -> None:
    files = _files(photos)
    first = open_disk_cache(tmp_path / "cache", "mini", files, [1] * 4, _sizes(files))

    def no_decoding(*args):
        raise AssertionError("the store was decoded again")

    monkeypatch.setattr(image_cache, "decode_all", no_decoding)
    again = open_disk_cache(tmp_path / "cache", "mini", files, [1] * 4, _sizes(files))
    assert again.folder == first.folder and again.builder_pid == first.builder_pid


def test_a_failed_build_leaves_no_store_behind(photos: Path, tmp_path: Path, monkeypatch) -> None:
    files = _files(photos)
    real = image_cache.decode_all

    def dies_after_two(files, factors, workers):
        for n, entry in enumerate(real(files, factors, workers)):
            if n == 2:
                raise KeyboardInterrupt  # the build is stopped half-way
            yield entry

    monkeypatch.setattr(image_cache, "decode_all", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        open_disk_cache(tmp_path / "cache", "mini", files, [1] * 4, _sizes(files))
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(image_cache, "decode_all", real)
    store = open_disk_cache(tmp_path / "cache", "mini", files, [1] * 4, _sizes(files))
    assert store.get(files[3])[0].shape == (392, 640, 3)


def _open_store(args: tuple[str, list[str]]) -> tuple[str, int]:
    root, files = args
    store = open_disk_cache(root, "mini", files, [2] * len(files), _sizes(files), workers=0)
    return str(store.folder), store.builder_pid


def test_processes_opening_one_store_at_once_build_it_once(photos: Path, tmp_path: Path) -> None:
    """As DDP ranks do: one builds under the lock, the others wait and map its store."""
    files = _files(photos)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        opened = pool.map(_open_store, [(str(tmp_path / "cache"), files)] * 3)
    assert len(set(opened)) == 1


def test_a_cache_that_does_not_fit_is_refused_naming_the_options(photos: Path, tmp_path: Path) -> None:
    files = _files(photos)
    need = cache_bytes(_sizes(files), [1] * 4)
    for kind in ("memory", "disk"):
        settings = ImageCacheSettings(kind, str(tmp_path / "cache"), max_gb=need / 2 / (1 << 30))
        with pytest.raises(
            ValueError, match=rf"loader.cache={kind}: .* need about 0.00 GiB.*loader.cache_max_gb"
        ):
            settings.build("mini", files, [1] * 4, _sizes(files))
    assert [p for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []  # refused before building
    fits = ImageCacheSettings("memory", max_gb=need * 2 / (1 << 30)).build(
        "mini", files, [1] * 4, _sizes(files)
    )
    assert isinstance(fits, MemoryImageCache)
    assert ImageCacheSettings("none").build("mini", files, [1] * 4, _sizes(files)) is None
    with pytest.raises(ValueError, match=r"loader\.cache must be one of none, memory, disk"):
        ImageCacheSettings("ram")
    with pytest.raises(ValueError, match=r"loader\.cache_max_gb"):
        ImageCacheSettings("memory", max_gb=0)


@pytest.mark.parametrize(("kind", "decode"), [("memory", "full"), ("disk", "full"), ("disk", "scaled")])
def test_loader_workers_read_the_cache_not_the_files(
    photos: Path, tmp_path: Path, kind: str, decode: str
) -> None:
    """A cached training dataset gives the items of the uncached one, also from two loader workers after the
    photos are gone. Scaled: each photo is stored at the factor all its crops allow (the uncached reader may
    reduce a crop further), so the geometry is the same, not every pixel."""
    kwargs = {"train": True, "codec": CODEC, "augmentation": TopDownAugmentation(), "decode": decode}
    plain = TopDownDataset(photos / "test_coco.json", photos, **kwargs)
    expected = [plain[i] for i in range(len(plain))]
    cache = ImageCacheSettings(kind, str(tmp_path / "cache"), workers=2 if kind == "disk" else 0)
    cached = TopDownDataset(photos / "test_coco.json", photos, cache=cache, **kwargs)
    assert isinstance(cached.image_reader.cache, MemoryImageCache if kind == "memory" else DiskImageCache)
    assert cached.image_reader.cache.factors.tolist() == cached.image_plan()[1].tolist()
    assert (cached.image_reader.cache.factors > 1).any() == (decode == "scaled")
    for photo in photos.glob("*.jpg"):
        photo.unlink()
    batch = next(iter(DataLoader(cached, batch_size=len(cached), num_workers=2)))
    for i, item in enumerate(expected):
        for key in ("heatmaps", "inv_affine"):
            np.testing.assert_array_equal(batch[key][i].numpy(), item[key])
        if decode == "full":
            np.testing.assert_array_equal(batch["image"][i].numpy(), item["image"])


def test_a_cached_unreadable_photo_is_skipped_and_counted_as_without_the_cache(photos: Path) -> None:
    (photos / "000000000785.jpg").write_bytes((photos / "000000000785.jpg").read_bytes()[:20000])
    cache = ImageCacheSettings("memory")
    strict = TopDownDataset(photos / "test_coco.json", photos, train=False, codec=CODEC, cache=cache)
    (broken,) = np.flatnonzero(strict.records.image_id == 785)
    with pytest.raises(
        UnreadableImageError, match=r"000000000785\.jpg: damaged JPEG.*skip_unreadable_images"
    ):
        strict[broken]
    skipping = TopDownDataset(photos / "test_coco.json", photos, train=False, codec=CODEC, cache=cache,
                              skip_unreadable_images=True)  # fmt: skip
    assert [int(skipping[broken]["index"]) for _ in range(2)] == [broken + 1] * 2
    assert skipping.num_unreadable_skipped == 2
