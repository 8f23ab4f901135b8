"""Bottom-up sample pipeline: augmentation, loss masks, BottomUpDataset items; CrowdPose loading."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.codecs.udp_heatmap import udp_stride
from aidpose.data.bottomup import BottomUpDataset
from aidpose.data.coco import load_images, load_instances
from aidpose.data.keypoints import COCO
from aidpose.data.loss_masks import ignore_region, loss_masks
from aidpose.data.sources import CrowdPoseSource
from aidpose.evaluation.annotations import load_ground_truth
from aidpose.geometry.affine import apply_affine, udp_warp_matrix
from aidpose.geometry.augment import BottomUpAugmentation, image_region
from tests.helpers import compose_config, write_crowdpose

CODEC = AssociativeEmbeddingCodec(input_size=(128, 128), heatmap_sizes=[(32, 32), (64, 64)], max_people=30)


def test_augmentation_draws_within_higherhrnet_ranges() -> None:
    aug = BottomUpAugmentation()
    rng = np.random.default_rng(0)
    draws = [aug.sample(rng, (640, 480), (512, 512)) for _ in range(400)]
    factors = np.array([d.scale[0] / 480 for d in draws])
    assert factors.min() >= 0.75 and factors.max() <= 1.5 and factors.max() - factors.min() > 0.6
    rotations = np.array([d.rotation for d in draws])
    assert np.abs(rotations).max() <= 30 and np.abs(rotations).max() > 25
    shifts = np.array([d.center - [319.5, 239.5] for d in draws])
    assert np.all(np.abs(shifts) <= 40 * np.array([[d.scale[0] / 200] for d in draws]) + 1e-9)
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    np.testing.assert_allclose(image_region((640, 480), (512, 384)), [640, 480])
    with pytest.raises(ValueError, match="min_scale"):
        BottomUpAugmentation(min_scale=2.0, max_scale=1.0)


def _person(
    ann_id: int, image_id: int, xy: np.ndarray, segmentation: list | dict | None = None, **extra
) -> dict:
    kps = np.zeros((len(xy), 3))
    kps[:, :2], kps[:, 2] = xy, 2
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "iscrowd": 0,
        "num_keypoints": len(xy),
        "keypoints": kps.ravel().tolist(),
        "area": float((x1 - x0) * (y1 - y0)),
    }
    if segmentation is not None:
        ann["segmentation"] = segmentation
    ann.update(extra)
    return ann


def write_crowded_image(root: Path) -> tuple[Path, np.ndarray]:
    """A 200×160 image with 8 labelled people on a grid, a crowd region (RLE) and an unlabelled person."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "crowd.png"), rng.integers(0, 255, (160, 200, 3), dtype=np.uint8))
    cells = np.stack(np.meshgrid(np.arange(4), np.arange(2)), -1).reshape(-1, 2)
    people = cells[:, None, :] * np.array([50.0, 50.0]) + rng.uniform(4, 46, (8, 17, 2))
    anns = [_person(i + 1, 1, people[i], segmentation=[]) for i in range(8)]
    crowd = np.zeros((160, 200), np.uint8, order="F")
    crowd[110:150, 10:60] = 1
    rle = mask_utils.encode(crowd)
    rle["counts"] = rle["counts"].decode()
    anns.append(
        {
            "id": 20,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": [10, 110, 50, 40],
            "area": 2000.0,
            "num_keypoints": 0,
            "keypoints": [0] * 51,
            "segmentation": rle,
        }
    )
    unlabelled = {
        "id": 21,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [120, 110, 40, 40],
        "area": 800.0,
        "num_keypoints": 0,
        "keypoints": [0] * 51,
        "segmentation": [[120, 110, 160, 110, 160, 150, 120, 150]],
    }
    anns.append(unlabelled)
    dataset = {
        "images": [{"id": 1, "file_name": "crowd.png", "width": 200, "height": 160}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}],
    }
    ann_file = root / "crowd.json"
    ann_file.write_text(json.dumps(dataset))
    return ann_file, people


def test_ignore_region_covers_crowd_rle_and_unlabelled_people_only(tmp_path: Path) -> None:
    ann_file, _ = write_crowded_image(tmp_path)
    anns = json.loads(ann_file.read_text())["annotations"]
    region = ignore_region(anns, 160, 200)
    assert region is not None and region.shape == (160, 200)
    assert region[110:150, 10:60].all() and region[115:145, 125:155].all()
    assert region.sum() == pytest.approx(2000 + 41 * 41, rel=0.05)
    assert ignore_region(anns[:8], 160, 200) is None  # labelled people never add to the mask


def test_inside_image_mask_equals_the_warped_border() -> None:
    """Without an ignore region the mask is computed without warping; over HigherHRNet's random warps it equals
    the bilinear warp of an all-ones image thresholded at 0.5 (the old definition) but for the warp's
    fixed-point rounding on at most one pixel of a map."""
    rng = np.random.default_rng(0)
    augmentation = BottomUpAugmentation()
    differing = []
    for _ in range(60):
        width, height = (int(v) for v in rng.integers(150, 700, 2))
        p = augmentation.sample(rng, (width, height), (512, 512))
        matrix = udp_warp_matrix(p.center, p.scale, p.rotation, (512, 512), p.flip)
        analytic = loss_masks(None, (width, height), matrix, (512, 512), [(128, 128), (256, 256)])
        for size, mask in zip([(128, 128), (256, 256)], analytic, strict=True):
            to_map = (matrix / udp_stride((512, 512), size)[:, None]).astype(np.float32)
            ones = np.full((height, width), 255, np.uint8)
            warped = cv2.warpAffine(ones, to_map, size, flags=cv2.INTER_LINEAR, borderValue=0) > 127
            assert mask.dtype == np.uint8 and mask.shape == size[::-1]
            differing.append(int((mask.astype(bool) != warped).sum()))
    assert max(differing) <= 1 and sum(differing) <= 3


def test_loss_masks_warp_the_ignore_region_and_drop_the_border() -> None:
    ignore = np.zeros((100, 100), np.uint8)
    ignore[:, :50] = 1
    # the 100×100 image centred in a 200×200 input (scale 2): a quarter of each side is border
    matrix = udp_warp_matrix(np.array([49.5, 49.5]), np.array([199.0, 199.0]), 0.0, (200, 200))
    masks = loss_masks(ignore, (100, 100), matrix, (200, 200), [(50, 50)])
    # image x ∈ [0, 99] → input [50, 149] → heatmap [12.3, 36.7] (stride 199/49)
    mask = masks[0]
    assert mask.shape == (50, 50) and mask.dtype == np.uint8
    assert mask[:, :10].sum() == 0 and mask[:10].sum() == 0  # border outside the image
    assert mask[25, 14:24].sum() == 0  # left half of the image ignored
    assert mask[25, 27:36].all()  # right half trained


def test_dataset_item_on_a_synthetic_crowded_image(tmp_path: Path) -> None:
    ann_file, people = write_crowded_image(tmp_path)
    dataset = BottomUpDataset(ann_file, tmp_path / "images", codec=CODEC)
    assert dataset.summary == {"ignored_annotations": 2, "images": 1, "people": 8}
    item = dataset[0]
    assert item["image"].shape == (128, 128, 3) and item["image"].dtype == np.uint8
    assert item["heatmaps"][0].shape == (17, 32, 32) and item["heatmaps"][1].shape == (17, 64, 64)
    assert item["masks"][0].shape == (32, 32) and item["masks"][1].shape == (64, 64)
    # no augmentation: short side 160 fills 128 px, centred; every person's joints peak in the 1/2 maps
    matrix = udp_warp_matrix(np.array([99.5, 79.5]), np.array([160.0, 160.0]), 0.0, (128, 128))
    xy = apply_affine(people, matrix) / udp_stride((128, 128), (64, 64))
    for p in range(8):
        inside = (xy[p] >= 0).all(1) & (xy[p] <= 63).all(1)
        x, y = np.floor(xy[p, inside] + 0.5).astype(int).T
        assert (item["heatmaps"][1][np.flatnonzero(inside), y, x] > 0.88).all()
    # people partly outside the input still have tags for their inside joints
    indices = item["keypoint_indices"]
    assert indices.shape == (30, 17, 2) and indices[:8, :, 1].sum() > 100 and not indices[8:].any()
    # crowd region (image x 10–60, y 110–150) is ignored, a labelled person's area is not
    crowd_centre = apply_affine(np.array([[35.0, 130.0]]), matrix)[0] / udp_stride((128, 128), (64, 64))
    assert item["masks"][1][int(crowd_centre[1]), int(crowd_centre[0])] == 0
    assert item["masks"][1][16, 32] == 1
    assert item["visible_count"].sum() > 100 and not item["dropped_count"].any()


def test_dataset_flip_swaps_left_and_right(tmp_path: Path) -> None:
    ann_file, _ = write_crowded_image(tmp_path)
    flip_only = BottomUpAugmentation(
        min_scale=1.0, max_scale=1.0, max_rotation=0, max_translate=0, flip_prob=1.0
    )
    plain = BottomUpDataset(ann_file, tmp_path / "images", codec=CODEC)[0]
    flipped = BottomUpDataset(ann_file, tmp_path / "images", codec=CODEC, augmentation=flip_only)[0]
    # bilinear weights are quantised to 1/32 pixel, so a mirrored sample point (fraction f vs 1 - f) may round
    # one grey level apart; which pixels do depends on OpenCV's SIMD path (exact on earlier CI machines, 27 of
    # 49,152 off by one on an AVX-512 machine)
    np.testing.assert_allclose(
        flipped["image"].astype(int), plain["image"][:, ::-1].astype(int), rtol=0, atol=1
    )
    for i in range(2):
        np.testing.assert_allclose(
            flipped["heatmaps"][i], plain["heatmaps"][i][COCO.flip_index][:, :, ::-1], atol=1e-5
        )
        np.testing.assert_array_equal(flipped["masks"][i], plain["masks"][i][:, ::-1])


def test_dataset_applies_the_dropper_to_the_whole_image(tmp_path: Path) -> None:
    from aidpose.aid import HideAndSeek

    ann_file, _ = write_crowded_image(tmp_path)
    # 16-px cells, each hidden with probability 0.5: the 8 people's joints cannot all escape
    dropper = HideAndSeek(cell_sizes=(16 / 128,), p=1.0)  # 16-px cells of the 128-px input
    plain = BottomUpDataset(ann_file, tmp_path / "images", codec=CODEC)[0]
    item = BottomUpDataset(ann_file, tmp_path / "images", codec=CODEC, dropper=dropper)[0]
    assert item["dropped_count"].sum() > 0 and (item["dropped_count"] <= item["visible_count"]).all()
    hidden = (item["image"] == 0).all(axis=-1) & (plain["image"] != 0).any(axis=-1)
    assert hidden.mean() > 0.2  # whole-image cells, not per-person crops
    np.testing.assert_array_equal(item["heatmaps"][1], plain["heatmaps"][1])  # targets keep every joint


def test_masks_on_a_real_coco_photo_with_an_unannotated_person(coco_mini: Path, tmp_path: Path) -> None:
    coco_file = coco_mini / "test_coco.json"
    data = json.loads(coco_file.read_text())
    data["images"] = [i for i in data["images"] if i["id"] == 196141]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] == 196141]
    ann_file = tmp_path / "one.json"
    ann_file.write_text(json.dumps(data))
    _, records, summary = load_images(ann_file, coco_mini, 17)
    assert summary == {"ignored_annotations": 1, "images": 1, "people": 4}
    unlabelled = next(a for a in data["annotations"] if a["num_keypoints"] == 0)
    region = ignore_region(records.annotations[0], 429, 640)
    assert region is not None and region.sum() == pytest.approx(unlabelled["area"], rel=0.1)
    item = BottomUpDataset(ann_file, coco_mini, codec=CODEC)[0]
    # the unlabelled person's box centre is masked at 1/2 resolution; labelled joints are not
    x, y, w, h = unlabelled["bbox"]
    matrix = udp_warp_matrix(np.array([319.5, 214.0]), np.array([429.0, 429.0]), 0.0, (128, 128))
    cx, cy = apply_affine(np.array([[x + w / 2, y + h / 2]]), matrix)[0] / udp_stride((128, 128), (64, 64))
    assert item["masks"][1][round(float(cy)), round(float(cx))] == 0
    labelled = np.concatenate(records.keypoints[0])
    joints = apply_affine(labelled[labelled[:, 2] > 0, :2], matrix) / udp_stride((128, 128), (64, 64))
    jx, jy = np.floor(joints + 0.5).astype(int).T
    inside = (jx >= 0) & (jx < 64) & (jy >= 0) & (jy < 64)
    assert item["masks"][1][jy[inside], jx[inside]].mean() > 0.95
    assert item["keypoint_indices"][:4, :, 1].sum() == inside.sum()


def test_crowdpose_loading_top_down_bottom_up_and_ground_truth(tmp_path: Path) -> None:
    root = tmp_path / "crowdpose"
    write_crowdpose(root)
    splits = CrowdPoseSource(str(root)).prepare()
    assert (
        splits.train_ann == root / "json" / "crowdpose_trainval.json" and splits.val_images == root / "images"
    )
    _, records, summary = load_instances(
        splits.train_ann, splits.train_images, num_keypoints=14, layout="crowdpose"
    )
    assert summary == {"annotations": 3, "images": 1, "instances": 2, "skipped_no_keypoints": 1}
    assert records.keypoints.shape == (2, 14, 3)
    _, images, counts = load_images(splits.train_ann, splits.train_images, 14, layout="crowdpose")
    assert counts == {"ignored_annotations": 1, "images": 2, "people": 2}
    assert ignore_region(images.annotations[1], 120, 160) is None  # CrowdPose: no mask, as HigherHRNet
    gt = load_ground_truth(str(splits.val_ann), 14)
    np.testing.assert_allclose(np.sort(gt.crowd_index), [0.12, 0.85])
    with pytest.raises(ValueError, match="has 14 keypoints but the layout has 17"):
        load_instances(splits.train_ann, splits.train_images, num_keypoints=17, layout="crowdpose")
    with pytest.raises(FileNotFoundError, match=r"crowdpose_val\.json.*Jeff-sjtu"):
        CrowdPoseSource(str(root), val_split="val").prepare()


def test_crowdpose_dataset_config_composes(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = compose_config(["dataset=crowdpose"], tmp_path)
    assert (cfg.dataset.layout, cfg.dataset.metric) == ("crowdpose", "crowdpose")
    write_crowdpose(Path(cfg.paths.data_dir) / "crowdpose")
    splits = instantiate(cfg.dataset.source).prepare()
    assert splits.train_ann.name == "crowdpose_trainval.json" and splits.val_ann.name == "crowdpose_test.json"
