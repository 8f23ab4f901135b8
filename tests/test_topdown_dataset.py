"""TopDownDataset on the real COCO fixture: items, geometry, flip, dropper, seeding, unreadable images."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aidpose.codecs import UDPHeatmapCodec
from aidpose.codecs.udp_heatmap import encode_udp_heatmaps, flip_back_heatmaps
from aidpose.data.pipeline import SampleKey
from aidpose.data.topdown import TopDownDataset
from aidpose.geometry.affine import apply_affine, box_to_center_scale, udp_warp_matrix
from aidpose.geometry.augment import TopDownAugmentation
from aidpose.training.datamodule import EpochSampler

CODEC = UDPHeatmapCodec(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
NO_AUG = {"half_body_prob": 0.0, "scale_sigma": 0.0, "rotation_prob": 0.0}


def _dataset(root: Path, **kwargs) -> TopDownDataset:
    return TopDownDataset(root / "test_coco.json", root, codec=CODEC, **kwargs)


class CornerDropper:
    """Blacks out the crop's top-left quarter and reports the keypoints inside it."""

    def __init__(self) -> None:
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def drop(self, image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator, *, visibility=None):
        self.seen.append((image.copy(), keypoints.copy(), visibility.copy()))
        h, w = image.shape[:2]
        image[: h // 2, : w // 2] = 0
        return image, (keypoints[:, 0] < w // 2) & (keypoints[:, 1] < h // 2)


def test_train_and_val_items_have_the_documented_shapes_and_dtypes(coco_mini: Path) -> None:
    train = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation())
    val = _dataset(coco_mini, train=False, augmentation=TopDownAugmentation())
    assert len(train) == len(val) == 12 and train.num_keypoints == 17
    assert (
        train.summary["instances"] == 12
        and train.coco.getAnnIds()
        and train.ann_file.endswith("test_coco.json")
    )
    assert val.augmentation is None and val.dropper is None
    for item in (train[3], val[3]):
        assert item["image"].shape == (256, 192, 3) and item["image"].dtype == np.uint8
        assert item["image"].flags["C_CONTIGUOUS"]
        assert item["heatmaps"].shape == (17, 64, 48) and item["heatmaps"].dtype == np.float32
        for key in ("keypoint_weights",):
            assert item[key].shape == (17,) and item[key].dtype == np.float32
        for key in ("dropped_count", "visible_count"):  # per joint, of the crop's one person: 0 or 1
            assert item[key].shape == (17,) and item[key].dtype == np.int64 and item[key].max() <= 1
        assert item["inv_affine"].shape == (2, 3) and item["inv_affine"].dtype == np.float32
        for key, dtype in [("image_id", np.int64), ("ann_id", np.int64), ("index", np.int64)]:
            assert item[key].dtype == dtype
        for key in ("bbox_score", "area"):
            assert item[key].dtype == np.float32
    batch = next(iter(DataLoader(val, batch_size=4, collate_fn=val.collate)))
    assert batch["image"].shape == (4, 3, 256, 192) and batch["image"].dtype == torch.uint8
    # the (B, 3, H, W) view of the stacked crops: channels-last, nothing copied
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(batch["image"][1].permute(1, 2, 0).numpy(), val[1]["image"])
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_val_item_is_the_centred_udp_crop(coco_mini: Path) -> None:
    val = _dataset(coco_mini, train=False)
    i = 1  # a person with joints of every visibility: v = 0, 1 and 2
    item = val[i]
    record = val.records
    center, scale = box_to_center_scale(record.bbox[i], 192 / 256, 1.25)
    # the crop centre and corners map back to the padded box
    corners = apply_affine(np.array([[95.5, 127.5], [0.0, 0.0], [191.0, 255.0]]), item["inv_affine"])
    np.testing.assert_allclose(corners, [center, center - scale / 2, center + scale / 2], atol=1e-2)
    # pixels: the bilinear UDP warp of the image, in RGB
    matrix = udp_warp_matrix(center, scale, 0.0, (192, 256))
    expected = cv2.warpAffine(cv2.imread(str(record.file[i])), matrix, (192, 256), flags=cv2.INTER_LINEAR)
    assert np.abs(item["image"].astype(int) - expected[:, :, ::-1]).max() <= 1
    # targets: encoded from the warped keypoints; weights 1 for labelled joints (v = 1 or 2), 0 for v = 0
    keypoints = record.keypoints[i]
    crop_xy = apply_affine(keypoints[:, :2], np.linalg.inv(np.vstack([item["inv_affine"], [0, 0, 1]]))[:2])
    target, weight = encode_udp_heatmaps(
        crop_xy, (keypoints[:, 2] > 0).astype(np.float32), (192, 256), (48, 64), 2
    )
    np.testing.assert_allclose(item["heatmaps"], target, atol=1e-4)
    np.testing.assert_array_equal(item["keypoint_weights"], weight)
    assert set(keypoints[:, 2]) == {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(item["keypoint_weights"], keypoints[:, 2] > 0)
    np.testing.assert_array_equal(
        item["visible_count"], keypoints[:, 2] == 2
    )  # all labelled joints are in the crop
    assert item["ann_id"] == record.ann_id[i] and item["image_id"] == record.image_id[i]
    assert item["bbox_score"] == 1.0 and item["area"] == pytest.approx(record.bbox[i, 2] * record.bbox[i, 3])


def test_flipped_sample_is_the_mirrored_crop_with_swapped_joints(coco_mini: Path) -> None:
    flipped = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation(flip_prob=1.0, **NO_AUG))
    plain = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation(flip_prob=0.0, **NO_AUG))
    flip_index = plain.flip_index
    for i in (0, 5):
        a, b = flipped[i], plain[i]
        mirror_diff = np.abs(a["image"].astype(int) - b["image"][:, ::-1])
        assert mirror_diff.max() <= 1 and np.mean(mirror_diff > 0) < 0.01  # cv2's fixed-point rounding
        np.testing.assert_allclose(
            a["heatmaps"], flip_back_heatmaps(b["heatmaps"][None], flip_index)[0], atol=1e-5
        )
        np.testing.assert_array_equal(a["keypoint_weights"], b["keypoint_weights"][flip_index])
        np.testing.assert_array_equal(a["visible_count"], b["visible_count"][flip_index])
        # the same image points: the crop→image maps differ by the mirror x → 191 - x
        mirror = np.array([[-1.0, 0.0, 191.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        np.testing.assert_allclose(a["inv_affine"], b["inv_affine"] @ mirror, atol=1e-3)


def test_dropper_runs_on_training_crops_only(coco_mini: Path) -> None:
    dropper = CornerDropper()
    train = _dataset(
        coco_mini, train=True, augmentation=TopDownAugmentation(flip_prob=0.0, **NO_AUG), dropper=dropper
    )
    item = train[0]
    crop_seen, keypoints_seen, visibility_seen = dropper.seen[0]
    assert (
        crop_seen.shape == (256, 192, 3) and crop_seen.dtype == np.uint8 and crop_seen.flags["C_CONTIGUOUS"]
    )
    np.testing.assert_array_equal(visibility_seen, train.records.keypoints[0, :, 2])
    np.testing.assert_array_equal(crop_seen[128:, 96:], item["image"][128:, 96:])
    assert not item["image"][:128, :96].any() and item["image"][128:, 96:].any()
    in_region = (keypoints_seen[:, 0] < 96) & (keypoints_seen[:, 1] < 128)
    assert item["dropped_count"].tolist() == (in_region & (item["visible_count"] > 0)).tolist()
    val = _dataset(coco_mini, train=False, dropper=dropper)
    assert val[0]["image"][:128, :96].any() and len(dropper.seen) == 1 and not val[0]["dropped_count"].any()


def test_aid_cutout_plugs_in(coco_mini: Path) -> None:
    from aidpose.aid import Cutout

    plain = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation())[2]
    dropper = Cutout(size_range=(0.4, 0.4))  # one ellipse, semi-axes 0.4 · 192 px, filled with 0
    item = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation(), dropper=dropper)[2]
    np.testing.assert_array_equal(item["inv_affine"], plain["inv_affine"])  # same augmentation draws
    changed = (item["image"] != plain["image"]).any(axis=-1)
    assert (item["image"][changed] == 0).all() and changed.sum() > 0.05 * 192 * 256
    assert item["dropped_count"].dtype == np.int64 and item["dropped_count"].shape == (17,)


def test_dropper_with_a_wrong_mask_is_reported(coco_mini: Path) -> None:
    class BadDropper:
        def drop(self, image, keypoints, rng, *, visibility=None):
            return image, np.zeros(3, dtype=bool)

    train = _dataset(coco_mini, train=True, dropper=BadDropper())
    with pytest.raises(ValueError, match=r"BadDropper\.drop returned"):
        train[0]


def test_random_draws_follow_the_sample_key(coco_mini: Path) -> None:
    ds = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation())

    def draws(seed: int, epoch: int) -> np.ndarray:
        return np.stack([ds[SampleKey(i, seed, epoch)]["inv_affine"] for i in range(4)])

    first = draws(1, 0)
    np.testing.assert_array_equal(first, draws(1, 0))  # a rerun repeats them
    np.testing.assert_array_equal(
        ds[0]["inv_affine"], ds[SampleKey(0)]["inv_affine"]
    )  # int = seed 0, epoch 0
    assert not np.allclose(first, draws(2, 0)) and not np.allclose(first, draws(1, 1))  # seed, epoch
    assert not np.allclose(first[0], first[1])  # each item its own stream


def test_epoch_sampler_order_and_streams_are_the_same_with_any_worker_count(coco_mini: Path) -> None:
    ds = _dataset(coco_mini, train=True, augmentation=TopDownAugmentation())

    def epoch_batches(num_workers: int, epoch: int) -> tuple[list[int], np.ndarray]:
        sampler = EpochSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=7)
        sampler.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=num_workers)
        batches = list(loader)
        return torch.cat([b["index"] for b in batches]).tolist(), torch.cat(
            [b["inv_affine"] for b in batches]
        )

    order, affine = epoch_batches(0, epoch=3)
    order_workers, affine_workers = epoch_batches(2, epoch=3)
    assert order == order_workers and torch.equal(affine, affine_workers)
    assert sorted(order) == list(range(len(ds)))
    assert epoch_batches(0, epoch=4)[0] != order  # another epoch, another shuffle


def test_options_are_validated(coco_mini: Path) -> None:
    det = coco_mini / "test_coco_det_AP_H_56.json"
    with pytest.raises(ValueError, match="boxes='gt'"):
        _dataset(coco_mini, train=True, boxes="detections", det_file=det)
    with pytest.raises(ValueError, match="sigma"):
        UDPHeatmapCodec(input_size=(192, 256), heatmap_size=(48, 64), sigma=0.0)
    val = _dataset(coco_mini, train=False, boxes="detections", det_file=det, det_score_thr=0.5)
    assert (val.records.ann_id == -1).all() and val[0]["keypoint_weights"].sum() == 0


@pytest.fixture
def broken_copy(coco_mini: Path, tmp_path: Path) -> Path:
    """coco_mini with one image file overwritten by garbage (exists, but cv2 cannot decode it)."""
    root = tmp_path / "coco_mini"
    shutil.copytree(coco_mini, root)
    (root / "000000000785.jpg").write_bytes(b"not a jpeg")
    return root


def test_unreadable_image_is_named(broken_copy: Path) -> None:
    ds = _dataset(broken_copy, train=False)
    index = int(np.flatnonzero(ds.records.image_id == 785)[0])
    with pytest.raises(OSError, match=r"cannot read image .*000000000785\.jpg.*skip_unreadable_images"):
        ds[index]


def test_unreadable_image_is_skipped_and_counted_across_workers(broken_copy: Path) -> None:
    ds = _dataset(broken_copy, train=False, skip_unreadable_images=True)
    (broken,) = np.flatnonzero(ds.records.image_id == 785)  # the photo's only person
    items = [ds[i] for i in range(len(ds))]
    assert ds.num_unreadable_skipped == 1
    assert int(items[broken]["index"]) == broken + 1  # replaced by the next instance
    assert all(int(items[i]["index"]) == i for i in range(len(ds)) if i != broken)
    loader = DataLoader(ds, batch_size=len(ds), num_workers=1)
    next(iter(loader))
    assert ds.num_unreadable_skipped == 2  # counted in the worker, read in the owner


def test_datamodule_reports_skipped_images_per_split(broken_copy: Path) -> None:
    from aidpose.training.datamodule import PoseDataModule

    dm = PoseDataModule(source=None, train_dataset=None, val_dataset=None, batch_size=1, val_batch_size=1,
                        num_workers=0)  # fmt: skip
    dm.val_dataset = _dataset(broken_copy, train=False, skip_unreadable_images=True)
    assert dm.unreadable_images_skipped() == {"val": 0}
    [dm.val_dataset[i] for i in range(len(dm.val_dataset))]
    assert dm.unreadable_images_skipped() == {"val": 1}  # what train.py writes into metrics.json
