"""Bottom-up datasets: whole training images through the shared sample pipeline (``BottomUpDataset``) and whole
validation images at the codec's test scales (``BottomUpValDataset``).

Per training item: sample the augmentation of the whole image (scale, rotation, translation, flip, as HigherHRNet),
read the image (at the reduction the warp allows, or from the decoded-image cache), warp once with the UDP matrix
(flip and reduction folded in), let the dropper drop information from the whole warped image, encode the codec's targets (heatmaps at every output resolution, tag-loss indices) and add the
masks that remove crowd regions and unannotated people from the heatmap loss (``aidpose.data.loss_masks``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.data.coco import how_to_get_data, image_sizes, is_labelled_person, load_coco, load_images
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.images import ImageReader
from aidpose.data.keypoints import get_layout
from aidpose.data.loss_masks import ignore_region, loss_masks
from aidpose.data.pipeline import SampleDataset, WarpedSample
from aidpose.geometry.affine import item_inverse_affine
from aidpose.geometry.augment import AugmentationParams, image_region


class BottomUpDataset(SampleDataset):
    """Whole images of a COCO-format keypoint dataset with bottom-up training targets.

    Args: :class:`~aidpose.data.pipeline.SampleDataset`'s (``codec``: the bottom-up codec, ``augmentation``: of
    the whole image, None: the image centred, short side filling the input; ``train`` defaults to True).

    Items (besides the image, the codec's targets ``heatmaps`` (one per resolution), ``keypoint_indices``,
    ``people_truncated`` and the dropper's statistics): ``masks`` (one (h, w) uint8 heatmap-loss mask per
    resolution), ``image_id`` and ``inv_affine`` (input → image).
    """

    def __init__(
        self, ann_file: str | os.PathLike, image_dir: str | os.PathLike, *, train: bool = True, **options: Any
    ) -> None:
        super().__init__(ann_file, image_dir, train=train, **options)
        self.coco, self.records, self.summary = load_images(
            ann_file, image_dir, self.layout.num_keypoints, self.layout.name
        )
        self.files = self.records.file
        self.image_sizes = self.records.size
        self.open_image_cache()

    def __len__(self) -> int:
        return len(self.records.image_id)

    def people(self, index: int) -> np.ndarray:
        return self.records.keypoints[index]

    def warp_params(
        self, index: int, image_size: tuple[int, int], people: np.ndarray, rng: np.random.Generator | None
    ) -> AugmentationParams:
        """HigherHRNet's augmentation when training, else the image centred, its short side filling the input."""
        if self.augmentation is not None:
            return self.augmentation.sample(rng, image_size, self.input_size)
        center = (np.asarray(image_size, dtype=np.float64) - 1) / 2
        return AugmentationParams(center, image_region(image_size, self.input_size), 0.0, False, False)

    def smallest_warp_scale(self, index: int) -> np.ndarray:
        if self.augmentation is None:
            return image_region(self.image_sizes[index], self.input_size)
        return self.augmentation.smallest_scale(self.image_sizes[index], self.input_size)

    def item_fields(self, sample: WarpedSample, targets: dict[str, Any]) -> dict[str, Any]:
        width, height = sample.image_size
        ignore = ignore_region(self.records.annotations[sample.index], height, width)
        return {
            "masks": loss_masks(
                ignore, sample.image_size, sample.matrix, self.input_size, self.codec.heatmap_sizes
            ),
            "image_id": np.int64(self.records.image_id[sample.index]),
            "inv_affine": item_inverse_affine(sample.matrix),
        }


class BottomUpValDataset(Dataset):
    """The bottom-up validation (and test) set: every image of a COCO-format file, warped for whole-image
    inference at each of the codec's test scales (``AssociativeEmbeddingCodec.test_inputs``: short side →
    the codec's input size at scale 1, sides padded to multiples of its ``size_divisor``). Images without annotations are
    included (their detections count in the metrics); a file of images only (COCO test-dev) is read too.

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
            raise ValueError(
                "BottomUpValDataset yields whole images for inference: use BottomUpDataset to train"
            )
        self.layout = get_layout(layout)
        self.ann_file = str(ann_file)
        self.image_dir = str(image_dir)
        self.codec = codec
        self.image_reader = ImageReader(skip_unreadable_images)
        self.coco = load_coco(ann_file, layout, images_only=True)  # COCO test-dev: images only
        self.image_ids = np.array(sorted(self.coco.imgs), dtype=np.int64)
        self.files = [os.path.join(image_dir, self.coco.imgs[int(i)]["file_name"]) for i in self.image_ids]
        people = sum(is_labelled_person(ann) for ann in self.coco.anns.values())
        self.summary = {"images": len(self.image_ids), "instances": people}
        if not len(self.image_ids):
            raise ValueError(f"no images in {ann_file}. {how_to_get_data(ann_file, layout)}")
        if cache is not None:
            sizes = image_sizes(self.coco, self.image_ids, ann_file, np.int64)
            self.image_reader.cache = cache.build(Path(ann_file).stem, self.files, np.ones(len(sizes)), sizes)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_unreadable_skipped(self) -> int:
        return self.image_reader.skipped

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, index, _ = self.image_reader.read(self.files, index)
        images, matrices = self.codec.test_inputs(image)
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
