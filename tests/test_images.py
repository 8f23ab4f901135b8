"""Image reading (aidpose.data.images): the reduction a crop allows, the reduced decode's geometry, its crops
against the full-resolution path, damaged JPEGs, and the reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.images import (
    ImageReader,
    UnreadableImageError,
    decode_file,
    decode_image,
    jpeg_is_truncated,
    reduced_image_matrix,
    reduction_factor,
    smallest_factor_per_file,
)
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.affine import (
    apply_affine,
    box_to_center_scale,
    invert_affine,
    udp_warp_matrix,
    warp_to_rgb,
)
from aidpose.geometry.augment import TopDownAugmentation

PHOTO = "000000000785.jpg"  # 640×425: its reduced decodes have a padded last row (425 is odd)


def test_reduction_factor_is_the_image_pixels_per_input_pixel_both_axes_reach() -> None:
    # UDP: a 192×256 crop maps the scale onto 191×255 pixel units
    assert reduction_factor((2 * 191, 2 * 255), (192, 256)) == 2
    assert reduction_factor((2 * 191 - 0.1, 2 * 255), (192, 256)) == 1  # one axis short of 2
    assert reduction_factor((4 * 191, 5 * 255), (192, 256)) == 4
    assert reduction_factor((9 * 191, 9 * 255), (192, 256)) == 8
    assert reduction_factor((9 * 191, 9 * 255), (192, 256), max_factor=2) == 2
    assert reduction_factor((100.0, 130.0), (192, 256)) == 1


def test_reduced_matrix_composes_the_warp_with_the_block_centres() -> None:
    matrix = np.array([[0.5, 0.0, 1.0], [0.0, 0.25, 2.0]], dtype=np.float32)
    # reduced pixel x' is full pixel 2·x' + 0.5: crop x = 0.5·(2x' + 0.5) + 1 = x' + 1.25, y = 0.5·y' + 2.125
    np.testing.assert_allclose(reduced_image_matrix(matrix, 2), [[1.0, 0.0, 1.25], [0.0, 0.5, 2.125]])
    assert reduced_image_matrix(matrix, 1) is matrix
    rotated = udp_warp_matrix(np.array([300.0, 200.0]), np.array([700.0, 900.0]), 30.0, (192, 256), flip=True)
    reduced_px = np.array([[0.0, 0.0], [10.0, 3.0], [159.0, 106.0]])
    np.testing.assert_allclose(
        apply_affine(reduced_px, reduced_image_matrix(rotated, 4)),
        apply_affine(4 * reduced_px + 1.5, rotated),
        atol=1e-3,
    )


@pytest.mark.parametrize("factor", [2, 4])
def test_reduced_pixels_sit_at_their_block_centres_not_at_the_udp_corners(
    coco_mini: Path, factor: int
) -> None:
    """The reduced decode against an r×r box filter of the full decode, sampled where each rule puts the reduced
    pixels: the block centres (r·x' + (r - 1)/2) match to about 0.4 grey levels (the DCT vs box filter
    difference); a quarter pixel off, or the UDP rule x = x'·(W - 1)/(W' - 1), is several times worse."""
    full = cv2.imread(str(coco_mini / PHOTO)).astype(np.float32)
    reduced, got = decode_file(coco_mini / PHOTO, factor)
    assert got == factor
    (h, w), (height, width) = reduced.shape[:2], full.shape[:2]
    assert (h, w) == (-(-height // factor), -(-width // factor))
    box = cv2.blur(
        full, (factor, factor), anchor=(0, 0)
    )  # box[y, x]: the block whose top-left pixel is (x, y)

    def error(xs: np.ndarray, ys: np.ndarray) -> float:
        mx, my = np.meshgrid(xs - (factor - 1) / 2, ys - (factor - 1) / 2)
        sampled = cv2.remap(box, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        return float(np.abs(sampled - reduced)[2:-2, 2:-2].mean())

    def centres(offset: float) -> float:
        return error(factor * np.arange(w) + offset, factor * np.arange(h) + offset)

    exact = centres((factor - 1) / 2)
    udp = error(np.arange(w) * (width - 1) / (w - 1), np.arange(h) * (height - 1) / (h - 1))
    assert exact < 0.5
    assert min(centres((factor - 1) / 2 - 0.25), centres((factor - 1) / 2 + 0.25)) > 2 * exact
    assert udp > 2 * exact


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.mark.parametrize("factor", [2, 4])
def test_scaled_crops_differ_from_full_ones_less_than_two_bilinear_warps_do(
    coco_mini: Path, factor: int
) -> None:
    """Crops of the fixture's people that map factor to 1.3·factor image pixels onto one input pixel (random
    rotation and flip), warped from the reduced decode vs from the full image: the mean absolute difference
    (grey levels, over all crops) stays below that of the same crop warped from the full image bilinearly
    resized by 1/factor (two bilinear warps of the same image). Measured here: 1/2: 3.12 vs 3.55; 1/4: 2.26 vs 2.52.
    """
    dataset = json.loads((coco_mini / "test_coco.json").read_text())
    files = {image["id"]: image["file_name"] for image in dataset["images"]}
    rng = np.random.default_rng(0)
    scaled, two_warps = [], []
    for ann in dataset["annotations"]:
        if not ann["num_keypoints"]:
            continue
        file = coco_mini / files[ann["image_id"]]
        full, _ = decode_file(file)
        reduced, _ = decode_file(file, factor)
        resized = cv2.resize(full, reduced.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        center, _ = box_to_center_scale(np.array(ann["bbox"]), 0.75)
        for _ in range(3):
            width = factor * 191 * rng.uniform(1.0, 1.3)
            scale = np.array([width, width * 4 / 3])
            assert reduction_factor(scale, (192, 256)) == factor
            matrix = udp_warp_matrix(
                center, scale, rng.uniform(-45, 45), (192, 256), bool(rng.random() < 0.5)
            )
            reference = warp_to_rgb(full, matrix, (192, 256))
            to_reduced = reduced_image_matrix(matrix, factor)
            scaled.append(_mean_abs(warp_to_rgb(reduced, to_reduced, (192, 256)), reference))
            two_warps.append(_mean_abs(warp_to_rgb(resized, to_reduced, (192, 256)), reference))
    assert np.mean(scaled) < np.mean(two_warps)
    assert np.mean(scaled) < {2: 3.4, 4: 2.5}[factor]


def test_scaled_decode_reads_the_reduced_image_for_large_crops_only(coco_mini: Path) -> None:
    codec = UDPHeatmapCodec(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)
    full = TopDownDataset(coco_mini / "test_coco.json", coco_mini, train=False, codec=codec)
    scaled = TopDownDataset(
        coco_mini / "test_coco.json", coco_mini, train=False, codec=codec, decode="scaled"
    )
    expected = [reduction_factor(s, (48, 64)) for s in scaled.scales]
    assert {1, 2, 4} <= set(expected)
    for i in range(len(scaled)):
        a, b = full[i], scaled[i]
        np.testing.assert_array_equal(a["heatmaps"], b["heatmaps"])  # the geometry is the full image's
        np.testing.assert_array_equal(a["inv_affine"], b["inv_affine"])
        factor = expected[i]
        if factor == 1:
            np.testing.assert_array_equal(a["image"], b["image"])
            continue
        # the crop of the full image averaged over factor × factor blocks (edge replicated, as the encoder
        # pads): the same pixels to about a grey level
        image, _ = decode_file(scaled.records.file[i])
        h, w = (-(-n // factor) for n in image.shape[:2])
        padded = cv2.copyMakeBorder(image, 0, h * factor - image.shape[0], 0, w * factor - image.shape[1],
                                    cv2.BORDER_REPLICATE)  # fmt: skip
        box = cv2.resize(padded, (w, h), interpolation=cv2.INTER_AREA)
        matrix = reduced_image_matrix(invert_affine(b["inv_affine"]), factor)
        assert _mean_abs(warp_to_rgb(box, matrix, (48, 64)), b["image"]) < 0.6
    assert scaled.image_reader.decoded == {f: expected.count(f) for f in set(expected)}
    assert full.image_reader.decoded == {1: len(full)}


def test_training_plan_bounds_every_draw(coco_mini: Path) -> None:
    """image_plan's factor per file is one no augmented crop of that file goes below."""
    aug = TopDownAugmentation(half_body_prob=1.0)
    codec = UDPHeatmapCodec(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)
    ds = TopDownDataset(coco_mini / "test_coco.json", coco_mini, train=True, codec=codec, augmentation=aug,
                        decode="scaled")  # fmt: skip
    files, factors, sizes = ds.image_plan()
    assert len(files) == 4 and sizes.shape == (4, 2) and factors.min() >= 1
    bound = dict(zip(files, factors, strict=True))
    rng = np.random.default_rng(0)
    for i in range(len(ds)):
        k, c, s = ds.records.keypoints[i], ds.centers[i], ds.scales[i]
        smallest = aug.smallest_scale(k, s, ds.aspect_ratio, ds.upper_body_ids)
        for _ in range(200):
            drawn = aug.sample(rng, k, c, s, ds.aspect_ratio, ds.upper_body_ids).scale
            assert drawn[0] >= smallest[0] - 1e-9
            assert reduction_factor(drawn, (48, 64)) >= bound[ds.records.file[i]]


def test_smallest_factor_per_file() -> None:
    files, factors = smallest_factor_per_file(["a", "b", "a", "c", "b"], [4, 2, 2, 8, 4])
    assert files == ["a", "b", "c"] and factors.tolist() == [2, 2, 8]


@pytest.fixture
def truncated(coco_mini: Path, tmp_path: Path) -> Path:
    """coco_mini with one photo cut to 60% of its bytes (what an interrupted copy leaves)."""
    root = tmp_path / "coco_mini"
    shutil.copytree(coco_mini, root)
    data = (root / PHOTO).read_bytes()
    (root / PHOTO).write_bytes(data[: int(len(data) * 0.6)])
    return root


def test_a_truncated_jpeg_is_damaged_at_every_factor(truncated: Path, coco_mini: Path) -> None:
    assert cv2.imread(str(truncated / PHOTO)) is not None  # OpenCV alone decodes it (the missing rows grey)
    data = (truncated / PHOTO).read_bytes()
    assert jpeg_is_truncated(data) and not jpeg_is_truncated((coco_mini / PHOTO).read_bytes())
    assert not jpeg_is_truncated((coco_mini / PHOTO).read_bytes() + b"\0" * 64)  # zero padding is no damage
    for factor in (1, 2, 8):
        with pytest.raises(UnreadableImageError, match=rf"{PHOTO}: damaged JPEG, its end-of-image marker"):
            decode_file(truncated / PHOTO, factor)
    with pytest.raises(UnreadableImageError, match="not an image"):
        decode_image(b"GIF89a not really", 2, "x.gif")
    with pytest.raises(UnreadableImageError, match=r"missing\.jpg: FileNotFoundError"):
        decode_file(truncated / "missing.jpg")


@pytest.mark.parametrize("decode", ["full", "scaled"])
def test_the_dataset_names_or_skips_and_counts_a_truncated_photo(truncated: Path, decode: str) -> None:
    codec = UDPHeatmapCodec(input_size=(48, 64), heatmap_size=(12, 16), sigma=1.0)
    strict = TopDownDataset(truncated / "test_coco.json", truncated, train=False, codec=codec, decode=decode)
    (broken,) = np.flatnonzero(strict.records.image_id == 785)
    with pytest.raises(OSError, match=rf"{PHOTO}: damaged JPEG.*loader.skip_unreadable_images=true"):
        strict[broken]
    skipping = TopDownDataset(truncated / "test_coco.json", truncated, train=False, codec=codec, decode=decode,
                              skip_unreadable_images=True)  # fmt: skip
    assert int(skipping[broken]["index"]) == broken + 1 and skipping.num_unreadable_skipped == 1


class FakeCache:
    """Holds one image at factor 2."""

    def __init__(self, file: str, image: np.ndarray) -> None:
        self.file, self.image = file, image

    def get(self, file: str) -> tuple[np.ndarray, int] | None:
        return (self.image, 2) if file == self.file else None


def test_the_reader_takes_a_cached_image_only_when_its_factor_is_allowed(coco_mini: Path) -> None:
    files = [str(coco_mini / PHOTO)]
    stored = np.zeros((213, 320, 3), np.uint8)
    reader = ImageReader(skip_unreadable=False, cache=FakeCache(files[0], stored))
    assert reader.read(files, 0, 4).image is stored and reader.read(files, 0, 2).factor == 2
    full = reader.read(files, 0, 1)
    assert full.factor == 1 and full.image.shape == (425, 640, 3)
    assert reader.decoded == {2: 2, 1: 1}


def test_read_planned_redraws_the_plan_for_the_file_read_instead(truncated: Path) -> None:
    files = [str(truncated / PHOTO), str(truncated / "000000040083.jpg")]
    reader = ImageReader(skip_unreadable=True)
    asked = []

    def plan(i: int) -> tuple[str, int]:
        asked.append(i)
        return f"params of {i}", 4 if i == 0 else 1  # the replacement allows no reduction

    read, params = reader.read_planned(files, 0, plan)
    assert asked == [0, 1] and params == "params of 1"
    assert read.index == 1 and read.factor == 1 and read.image.shape == (333, 500, 3)
    assert reader.skipped == 1


def test_bottomup_images_larger_than_twice_the_input_read_reduced(coco_mini: Path) -> None:
    """At a 128² input the fixture photos (short sides 333-429 px) map ≥ 2 pixels onto one: the scaled path
    reads them at 1/2 with the same targets and masks (the pixels differ by the anti-aliasing only)."""
    from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
    from aidpose.data.bottomup import BottomUpDataset
    from aidpose.geometry.augment import BottomUpAugmentation

    codec = AssociativeEmbeddingCodec(
        input_size=(128, 128), heatmap_sizes=[(32, 32), (64, 64)], max_people=30
    )
    args = {"codec": codec, "augmentation": BottomUpAugmentation(min_scale=1.0, max_scale=1.0)}
    full = BottomUpDataset(coco_mini / "test_coco.json", coco_mini, **args)
    scaled = BottomUpDataset(coco_mini / "test_coco.json", coco_mini, decode="scaled", **args)
    assert scaled.image_plan()[1].tolist() == [2, 2, 2, 2] and full.image_plan()[1].tolist() == [1] * 4
    for i in range(len(full)):
        a, b = full[i], scaled[i]
        for key in ("heatmaps", "masks"):  # one per resolution
            for full_map, scaled_map in zip(a[key], b[key], strict=True):
                np.testing.assert_array_equal(full_map, scaled_map)
        for key in ("keypoint_indices", "inv_affine"):
            np.testing.assert_array_equal(a[key], b[key])
        assert 0 < _mean_abs(a["image"], b["image"]) < 12
    assert scaled.image_reader.decoded == {2: 4} and full.image_reader.decoded == {1: 4}
