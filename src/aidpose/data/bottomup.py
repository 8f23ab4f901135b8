"""Bottom-up sample pipeline: whole-image UDP geometry, loss masks and ``BottomUpDataset``.

Per item: sample the augmentation (scale, rotation, translation, flip of the whole image, as HigherHRNet),
read the image (at the reduction the warp allows, ``aidpose.data.images``), warp once with the UDP matrix (flip
and reduction folded in), let the dropper drop information
from the whole warped image, encode heatmaps at every output resolution, tag-loss indices and the masks
that remove crowd regions and unannotated people from the heatmap loss.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.codecs.udp_heatmap import udp_stride
from aidpose.data.coco import how_to_get_data, load_coco
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.images import ImageReader, check_decode_mode, reduced_image_matrix, reduction_factor
from aidpose.data.keypoints import get_layout
from aidpose.data.topdown import KeypointDropper, SampleKey, tune_malloc
from aidpose.geometry.affine import apply_affine, invert_affine, udp_warp_matrix, warp_to_rgb

REFERENCE_SIZE = 200.0
"""HigherHRNet/mmpose express the translation range in pixels per 200 px of the cropped region."""


class BottomUpParams(NamedTuple):
    """Whole-image warp: region centre and size (image px), rotation (degrees), flip."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flip: bool


def image_region(image_size: Sequence[int], input_size: Sequence[int], factor: float = 1.0) -> np.ndarray:
    """Size (w, h) in image px of the region that fills the input: its short side ``factor`` × the
    image's short side, its aspect ratio the input's (HigherHRNet's ``scale_type='short'``)."""
    short = min(image_size) * factor
    w, h = input_size
    return np.array([short * w / min(w, h), short * h / min(w, h)], dtype=np.float64)


@dataclass(frozen=True)
class BottomUpAugmentation:
    """HigherHRNet's training augmentation of the whole image (defaults as HigherHRNet and the AID paper).

    Args:
        min_scale, max_scale: region short side = image short side × U(min, max) (larger: people smaller).
        max_rotation: rotation U(-max, max) degrees.
        max_translate: centre shift U(-t, t) px per 200 px of region size, in x and y (HigherHRNet's 40).
        flip_prob: probability of a horizontal flip (joints swapped left/right).
    """

    min_scale: float = 0.75
    max_scale: float = 1.5
    max_rotation: float = 30.0
    max_translate: float = 40.0
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"BottomUpAugmentation needs 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}"
            )
        if self.max_rotation < 0 or self.max_translate < 0:
            raise ValueError("BottomUpAugmentation.max_rotation and max_translate must be >= 0")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"BottomUpAugmentation.flip_prob must be in [0, 1], got {self.flip_prob}")

    def sample(
        self, rng: np.random.Generator, image_size: Sequence[int], input_size: Sequence[int]
    ) -> BottomUpParams:
        """Draw one image's warp: scale, rotation, translation, then flip."""
        factor = rng.uniform(self.min_scale, self.max_scale)
        scale = image_region(image_size, input_size, factor)
        rotation = rng.uniform(-self.max_rotation, self.max_rotation)
        shift = rng.uniform(-1.0, 1.0, size=2) * self.max_translate * min(scale) / REFERENCE_SIZE
        center = (np.asarray(image_size, dtype=np.float64) - 1) / 2 + shift
        return BottomUpParams(center, scale, float(rotation), bool(rng.random() < self.flip_prob))


def inference_warps(
    image_size: Sequence[int], input_size: int, scales: Sequence[float], size_divisor: int = 32
) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Test-time warps of a whole image: one ``(matrix, (w, h))`` per scale, all covering the same region.

    At scale 1 the image's short side fills ``input_size`` px and the long side is padded up to a multiple
    of ``size_divisor``; at scale ``s`` each side is ``s`` times that, rounded to a multiple of
    ``size_divisor``. Every scale maps the same image region (centred on the image) onto its input with UDP
    corners, so maps of different scales align exactly after a corner-aligned resize.
    """
    iw, ih = image_size
    f = (input_size - 1) / (min(iw, ih) - 1)  # input px per image px at scale 1

    def rounded(v: float) -> int:
        return max(size_divisor, math.ceil(v / size_divisor) * size_divisor)

    base = np.array([rounded((iw - 1) * f + 1), rounded((ih - 1) * f + 1)])
    region = (base - 1) / f
    center = (np.array([iw, ih], dtype=np.float64) - 1) / 2
    warps = []
    for s in scales:
        w, h = (max(size_divisor, round(float(b) * s / size_divisor) * size_divisor) for b in base)
        warps.append((udp_warp_matrix(center, region, 0.0, (w, h)), (w, h)))
    return warps


def inference_inputs(
    image_bgr: np.ndarray, codec: AssociativeEmbeddingCodec
) -> tuple[list[torch.Tensor], np.ndarray]:
    """A BGR image warped for inference at each of ``codec.scales`` (:func:`inference_warps`, short side
    ``min(codec.input_size)`` at scale 1): (3, h_s, w_s) uint8 RGB tensors and the (S, 2, 3) image → input
    matrices."""
    height, width = image_bgr.shape[:2]
    images, matrices = [], []
    for matrix, size in inference_warps((width, height), min(codec.input_size), codec.scales):
        images.append(torch.from_numpy(np.stack(cv2.split(warp_to_rgb(image_bgr, matrix, size)))))
        matrices.append(matrix)
    return images, np.stack(matrices)


def heatmap_to_image_matrix(
    image_to_input: np.ndarray, input_size: Sequence[int], heatmap_size: Sequence[int]
) -> np.ndarray:
    """2×3 matrix from heatmap pixels to image pixels: heatmap → input (UDP stride) → image."""
    inv = invert_affine(image_to_input)
    stride = udp_stride(input_size, heatmap_size)
    return np.concatenate([inv[:, :2] * stride[None, :], inv[:, 2:]], axis=1)


def ignore_region(annotations: Sequence[dict[str, Any]], height: int, width: int) -> np.ndarray | None:
    """uint8 (H, W) map of the pixels the heatmap loss ignores, or None when there are none.

    As HigherHRNet for COCO: the segmentation of crowd annotations (RLE or polygons) and of person
    annotations without any labelled keypoint. Annotations without a segmentation (CrowdPose,
    SynthPose) add nothing, which is what HigherHRNet does on CrowdPose (no mask).
    """
    region = None
    for ann in annotations:
        segmentation = ann.get("segmentation")
        if not segmentation:
            continue
        if not ann.get("iscrowd", 0) and (np.asarray(ann.get("keypoints", ()))[2::3] > 0).any():
            continue
        if isinstance(segmentation, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        decoded = mask_utils.decode(rle)
        region = decoded if region is None else np.maximum(region, decoded)
    return region


def inside_image_mask(
    image_size: Sequence[int], image_to_map: np.ndarray, map_size: Sequence[int]
) -> np.ndarray:
    """uint8 (h, w) map of the grid pixels whose centre falls inside the image (its half-pixel border
    included): 1 inside, 0 on the black border of the warp. Exact for an affine map and computed per row
    (the interval of x where the four image-border inequalities hold), with no warp of an image-sized array.
    """
    iw, ih = (float(v) for v in image_size)
    w, h = (int(v) for v in map_size)
    inv = invert_affine(np.asarray(image_to_map, dtype=np.float64))  # map px → image px
    ys = np.arange(h, dtype=np.float64)
    lo = np.full(h, -np.inf)
    hi = np.full(h, np.inf)
    # image coordinate c = a·x + (b·y + t) must lie in [-0.5, size - 0.5], for c = x (row 0) and y (row 1)
    for row, size in ((0, iw), (1, ih)):
        a = inv[row, 0]
        offset = inv[row, 1] * ys + inv[row, 2]
        if abs(a) < 1e-12:  # the row's image coordinate does not change along x
            outside = (offset < -0.5) | (offset > size - 0.5)
            lo[outside], hi[outside] = np.inf, -np.inf
            continue
        first, second = (-0.5 - offset) / a, (size - 0.5 - offset) / a
        lo = np.maximum(lo, np.minimum(first, second))
        hi = np.minimum(hi, np.maximum(first, second))
    xs = np.arange(w, dtype=np.float64)
    return ((xs[None, :] >= lo[:, None]) & (xs[None, :] <= hi[:, None])).view(np.uint8)


def loss_masks(
    ignore: np.ndarray | None,
    image_size: Sequence[int],
    image_to_input: np.ndarray,
    input_size: Sequence[int],
    heatmap_sizes: Sequence[Sequence[int]],
) -> list[np.ndarray]:
    """Heatmap-loss masks (h, w) uint8 per resolution: 1 = trained, 0 = ignored.

    As in HigherHRNet, pixels that fall outside the image (the black border of the warp) are ignored. With
    an ignore region, the image minus that region is warped onto each heatmap grid (bilinear, > 0.5 is kept,
    the border is 0); without one (most images), the mask is the inside-image region, computed per row
    without warping (:func:`inside_image_mask`; it differs from the warp's rounding on at most a pixel).
    uint8: the loss multiplies by the mask as float, and a quarter of the bytes to copy and batch.
    """
    masks = []
    keep = None
    if ignore is not None:
        keep = np.full((int(image_size[1]), int(image_size[0])), 255, dtype=np.uint8)
        keep[ignore > 0] = 0
    for size in heatmap_sizes:
        stride = udp_stride(input_size, size)
        to_heatmap = np.asarray(image_to_input, dtype=np.float64) / stride[:, None]
        if keep is None:
            masks.append(inside_image_mask(image_size, to_heatmap, size))
            continue
        warped = cv2.warpAffine(
            keep,
            to_heatmap.astype(np.float32),
            tuple(int(v) for v in size),
            flags=cv2.INTER_LINEAR,
            borderValue=0,
        )
        masks.append((warped > 127).view(np.uint8))
    return masks


class ImageRecords(NamedTuple):
    """One row per image: id, file, size, people (N_i, K, 3) with labelled keypoints, annotations."""

    image_id: np.ndarray
    file: list[str]
    size: np.ndarray  # (I, 2) width, height
    keypoints: list[np.ndarray]
    annotations: list[list[dict[str, Any]]]


def load_images(
    ann_file: str | os.PathLike, image_dir: str | os.PathLike, num_keypoints: int, layout: str = "coco"
) -> tuple[Any, ImageRecords, dict[str, int]]:
    """Images of a COCO-format file with at least one annotation (HigherHRNet's training set).

    People with at least one labelled keypoint (and not ``iscrowd``) are trained on; the rest feed the
    ignore mask. Returns the pycocotools ``COCO``, the records and counts (images, people, skipped).
    """
    coco = load_coco(ann_file, layout)
    counts: Counter = Counter()
    ids, files, sizes, people, anns = [], [], [], [], []
    for image_id, image in coco.imgs.items():
        image_anns = coco.imgToAnns.get(image_id, [])
        if not image_anns:
            counts["skipped_images_without_annotations"] += 1
            continue
        kps = []
        for ann in image_anns:
            k = np.asarray(ann.get("keypoints", ()), dtype=np.float32)
            if k.size and k.size != 3 * num_keypoints:
                raise ValueError(
                    f"{ann_file}: annotation {ann.get('id')} has {k.size // 3} keypoints but the layout has "
                    f"{num_keypoints}; choose the matching layout (coco: 17, crowdpose: 14)."
                )
            if ann.get("iscrowd", 0) or not k.size or not (k[2::3] > 0).any():
                counts["ignored_annotations"] += 1
                continue
            kps.append(k.reshape(num_keypoints, 3))
        ids.append(image_id)
        files.append(os.path.join(image_dir, image["file_name"]))
        sizes.append((image["width"], image["height"]))
        people.append(np.stack(kps) if kps else np.zeros((0, num_keypoints, 3), np.float32))
        anns.append(image_anns)
    counts["images"] = len(ids)
    counts["people"] = sum(len(p) for p in people)
    if not ids:
        raise ValueError(f"no annotated images in {ann_file}. {how_to_get_data(ann_file, layout)}")
    records = ImageRecords(
        np.array(ids, dtype=np.int64), files, np.array(sizes, dtype=np.int64), people, anns
    )
    return coco, records, {k: int(v) for k, v in sorted(counts.items()) if v}


class BottomUpDataset(Dataset):
    """Whole images of a COCO-format keypoint dataset with bottom-up training targets.

    Args:
        ann_file, image_dir: COCO-format annotation file and its image folder.
        codec: the bottom-up codec (input size, heatmap sizes, sigma, max people).
        layout: keypoint layout name (``aidpose.data.keypoints``).
        augmentation: whole-image augmentation (None: the image centred, short side filling the input).
        dropper: AID dropper applied to the whole warped image (None: none).
        train: False ignores ``augmentation`` and ``dropper`` (targets of the centred image).
        skip_unreadable_images: skip (and count in ``num_unreadable_skipped``) images that cannot be read,
            taking the next readable one; False: an unreadable image is an error.
        decode: ``"scaled"`` decodes a JPEG at 1/2, 1/4 or 1/8 when the warp maps at least that many image
            pixels onto one input pixel (images larger than twice the input); ``"full"`` always in full.
        cache: keep the decoded images (``aidpose.data.image_cache``; None: decode every time).

    Items: ``image`` (3, H, W) uint8 RGB; ``heatmaps_i`` and ``masks_i`` per resolution i; ``keypoint_indices``
    (max_people, K, 2); ``visible_count``/``dropped_count`` (K,) per-joint counts of visible keypoints
    and of those the dropper hid; ``people_truncated``; ``image_id``; ``inv_affine`` (input → image).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        codec: AssociativeEmbeddingCodec,
        layout: str = "coco",
        augmentation: BottomUpAugmentation | None = None,
        dropper: KeypointDropper | None = None,
        train: bool = True,
        skip_unreadable_images: bool = False,
        decode: str = "full",
        cache: ImageCacheSettings | None = None,
    ) -> None:
        if dropper is not None and not callable(getattr(dropper, "drop", None)):
            raise TypeError(f"dropper {type(dropper).__name__} has no drop(image, keypoints, rng) method")
        self.layout = get_layout(layout)
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.codec = codec
        self.augmentation = augmentation if train else None
        self.dropper = dropper if train else None
        self.image_reader = ImageReader(skip_unreadable_images)
        self.coco, self.records, self.summary = load_images(
            ann_file, image_dir, self.layout.num_keypoints, layout
        )
        self.flip_index = self.layout.flip_index
        self.decode = check_decode_mode(decode)
        if cache is not None:
            self.image_reader.cache = cache.build(Path(ann_file).stem, *self.image_plan())
        self._malloc_pid: int | None = None

    def __len__(self) -> int:
        return len(self.records.image_id)

    def image_plan(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each image file, the decode factor all its warps allow (1 unless ``decode="scaled"``: the region of
        the smallest scale draw) and its (width, height): what the image cache stores."""
        factor = self.augmentation.min_scale if self.augmentation is not None else 1.0
        input_size = self.codec.input_size
        factors = [
            reduction_factor(image_region(size, input_size, factor), input_size)
            if self.decode == "scaled"
            else 1
            for size in self.records.size
        ]
        return list(self.records.file), np.array(factors, dtype=np.int64), self.records.size

    @property
    def num_unreadable_skipped(self) -> int:
        return self.image_reader.skipped

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """One training image; its draws come from the generator of ``key`` (see ``SampleKey``)."""
        key = SampleKey(*key) if isinstance(key, tuple) else SampleKey(int(key))
        if self._malloc_pid != os.getpid():
            tune_malloc()
            self._malloc_pid = os.getpid()
        input_size = self.codec.input_size
        rng = key.rng()

        def plan(i: int) -> tuple[BottomUpParams, int]:
            size = tuple(int(v) for v in self.records.size[i])
            if self.augmentation is not None:
                params = self.augmentation.sample(rng, size, input_size)
            else:
                params = BottomUpParams(
                    (np.array(size, dtype=np.float64) - 1) / 2, image_region(size, input_size), 0.0, False
                )
            return params, reduction_factor(params.scale, input_size) if self.decode == "scaled" else 1

        read, params = self.image_reader.read_planned(self.records.file, key.index, plan)
        index = read.index
        width, height = (int(v) for v in self.records.size[index])
        matrix = udp_warp_matrix(params.center, params.scale, params.rotation, input_size, params.flip)
        warped = warp_to_rgb(read.image, reduced_image_matrix(matrix, read.factor), input_size)

        people = self.records.keypoints[index]
        xy = apply_affine(people[..., :2], matrix)
        flags = people[..., 2]
        if params.flip:
            xy, flags = xy[:, self.flip_index], flags[:, self.flip_index]
        num_people, num_joints = flags.shape
        dropped = np.zeros((num_people, num_joints), dtype=bool)
        if self.dropper is not None:
            warped, hit = self.dropper.drop(warped, xy.reshape(-1, 2), rng, visibility=flags.reshape(-1))
            dropped = np.asarray(hit, dtype=bool).reshape(num_people, num_joints)

        targets = self.codec.encode(xy, flags)
        ignore = ignore_region(self.records.annotations[index], height, width)
        masks = loss_masks(ignore, (width, height), matrix, input_size, self.codec.heatmap_sizes)
        w, h = input_size
        inside = (xy[..., 0] >= -0.5) & (xy[..., 0] < w - 0.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] < h - 0.5)
        visible = (flags == 2) & inside
        item: dict[str, Any] = {
            "image": np.stack(cv2.split(warped)),  # CHW; faster than a transposed copy
            "keypoint_indices": targets["keypoint_indices"],
            "people_truncated": np.int64(targets["people_truncated"]),
            "visible_count": visible.sum(0).astype(np.int64),
            "dropped_count": (visible & dropped).sum(0).astype(np.int64),
            "image_id": np.int64(self.records.image_id[index]),
            "inv_affine": invert_affine(matrix).astype(np.float32),
        }
        for i, (heatmaps, mask) in enumerate(zip(targets["heatmaps"], masks, strict=True)):
            item[f"heatmaps_{i}"] = heatmaps
            item[f"masks_{i}"] = mask
        return item


class BottomUpImages(Dataset):
    """Every image of a COCO-format file, warped for whole-image inference at each of the codec's test
    scales (:func:`inference_warps`: short side → the codec's input size at scale 1, sides padded to
    multiples of 32). Images without annotations are included (their detections count in the metrics).

    Items: ``index``, ``image_id``, ``images`` (one (3, h_s, w_s) uint8 RGB per scale) and ``matrices``
    (one 2×3 image → input matrix per scale). Images differ in size: :meth:`collate` batches items as a list.

    Args:
        ann_file, image_dir: COCO-format annotation file and its image folder.
        codec: the bottom-up codec (``input_size``: the short side at scale 1; ``scales``).
        layout: keypoint layout name.
        train: must be False (validation/test data).
        skip_unreadable_images, cache: as :class:`BottomUpDataset` (images decoded in full).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        codec: AssociativeEmbeddingCodec,
        layout: str = "coco",
        train: bool = False,
        skip_unreadable_images: bool = False,
        cache: ImageCacheSettings | None = None,
    ) -> None:
        if train:
            raise ValueError("BottomUpImages yields whole images for inference: use BottomUpDataset to train")
        self.layout = get_layout(layout)
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.codec = codec
        self.image_reader = ImageReader(skip_unreadable_images)
        self.coco = load_coco(ann_file, layout)
        self.image_ids = np.array(sorted(self.coco.imgs), dtype=np.int64)
        self.files = [os.path.join(image_dir, self.coco.imgs[int(i)]["file_name"]) for i in self.image_ids]
        people = sum(
            1
            for ann in self.coco.anns.values()
            if not ann.get("iscrowd", 0) and (np.asarray(ann.get("keypoints", ()))[2::3] > 0).any()
        )
        self.summary = {"images": len(self.image_ids), "instances": people}
        if not len(self.image_ids):
            raise ValueError(f"no images in {ann_file}. {how_to_get_data(ann_file, layout)}")
        if cache is not None:
            sizes = np.array(
                [[self.coco.imgs[int(i)][k] for k in ("width", "height")] for i in self.image_ids]
            )
            self.image_reader.cache = cache.build(Path(ann_file).stem, self.files, np.ones(len(sizes)), sizes)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_unreadable_skipped(self) -> int:
        return self.image_reader.skipped

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, index, _ = self.image_reader.read(self.files, index)
        images, matrices = inference_inputs(image, self.codec)
        return {
            "index": index,
            "image_id": int(self.image_ids[index]),
            "images": images,
            "matrices": matrices,
        }

    @staticmethod
    def collate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items of different image sizes stay a list (one forward pass per image and scale)."""
        return items
