"""AI Challenger layout and its mapping onto COCO-17, as mmpose 1.x's ``KeypointConverter`` in
``td-hm_hrnet-w32_8xb64-210e_coco-aic-256x192-merge.py`` does it (layout: ``configs/_base_/datasets/aic.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.data.aic import AIC, AIC_TO_COCO, aic_annotation_to_coco, aic_dataset_to_coco, map_keypoints
from aidpose.data.keypoints import COCO

# every AIC joint → its COCO joint, written out by name (None: no COCO counterpart)
EXPECTED = {
    "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_wrist": "right_wrist",
    "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_wrist": "left_wrist",
    "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle",
    "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle",
    "head_top": None, "neck": None,
}  # fmt: skip


def test_aic_layout() -> None:
    assert AIC.num_keypoints == 14 and AIC.keypoint_names[12:] == ("head_top", "neck")
    assert AIC.flip_index.tolist() == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8, 12, 13]
    assert AIC.lower_body_ids == (6, 7, 8, 9, 10, 11)
    assert AIC.sigmas.shape == (14,) and AIC.sigmas[6] == pytest.approx(0.03909642)
    assert all(1 <= a <= 14 and 1 <= b <= 14 for a, b in AIC.skeleton) and len(AIC.skeleton) == 14


def test_every_joint_maps_to_its_coco_joint() -> None:
    mapped = {AIC.keypoint_names[a]: COCO.keypoint_names[c] for a, c in AIC_TO_COCO}
    assert {name: mapped.get(name) for name in AIC.keypoint_names} == EXPECTED
    # mmpose's mapping, index by index
    assert AIC_TO_COCO == ((0, 6), (1, 8), (2, 10), (3, 5), (4, 7), (5, 9), (6, 12), (7, 14), (8, 16), (9, 11), (10, 13), (11, 15))  # fmt: skip


def test_map_keypoints_fills_unmapped_joints_with_zeros() -> None:
    aic = np.stack([np.arange(14.0) + 1, 10 * (np.arange(14.0) + 1), np.full(14, 2.0)], axis=1)[
        None
    ]  # (1, 14, 3)
    coco = map_keypoints(aic, AIC_TO_COCO, 17)
    assert coco.shape == (1, 17, 3)
    assert coco[0, :5].tolist() == [[0.0, 0.0, 0.0]] * 5  # face joints unlabelled
    assert coco[0, 6].tolist() == [1.0, 10.0, 2.0] and coco[0, 5].tolist() == [4.0, 40.0, 2.0]
    assert coco[0, 16].tolist() == [9.0, 90.0, 2.0] and coco[0, 15].tolist() == [12.0, 120.0, 2.0]
    assert sorted(coco[0, :, 0][coco[0, :, 0] > 0].tolist()) == list(range(1, 13))  # head top, neck dropped


def test_flip_pairs_survive_the_mapping() -> None:
    to_coco = dict(AIC_TO_COCO)
    for a, b in AIC.flip_pairs:
        assert tuple(sorted((to_coco[a], to_coco[b]))) in COCO.flip_pairs
    # mirroring then mapping = mapping then mirroring
    kps = np.random.default_rng(0).random((3, 14, 3))
    np.testing.assert_array_equal(
        map_keypoints(kps[:, AIC.flip_index], AIC_TO_COCO, 17),
        map_keypoints(kps, AIC_TO_COCO, 17)[:, COCO.flip_index],
    )


def test_annotation_and_file_conversion() -> None:
    flat = []
    for j in range(14):  # joint j at (j, 100 + j); the right wrist (2) unlabelled, the neck (13) occluded
        flat += [j, 100 + j, 0 if j == 2 else (1 if j == 13 else 2)]
    ann = {
        "id": 7,
        "image_id": 3,
        "category_id": 1,
        "bbox": [0, 0, 50, 120],
        "keypoints": flat,
        "num_keypoints": 13,
    }
    converted = aic_annotation_to_coco(ann)
    kps = np.asarray(converted["keypoints"]).reshape(17, 3)
    assert converted["num_keypoints"] == 11  # the 12 limb joints but the unlabelled right wrist
    assert kps[10].tolist() == [2, 102, 0]  # right wrist = AIC 2, copied with its visibility 0: unlabelled
    assert kps[9].tolist() == [5, 105, 2]  # left wrist = AIC 5
    assert {k: v for k, v in converted.items() if k not in ("keypoints", "num_keypoints")} == {
        "id": 7, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 120]
    }  # fmt: skip
    assert ann["keypoints"] == flat  # the input is not changed
    dataset = {
        "images": [{"id": 3, "file_name": "a.jpg", "width": 64, "height": 128}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "person", "keypoints": list(AIC.keypoint_names), "skeleton": []}],
    }
    coco = aic_dataset_to_coco(dataset)
    assert coco["images"] == dataset["images"] and coco["annotations"] == [converted]
    assert (
        coco["categories"][0]["keypoints"] == list(COCO.keypoint_names) and coco["categories"][0]["id"] == 1
    )
    assert len(coco["categories"][0]["skeleton"]) == len(COCO.skeleton)
    with pytest.raises(ValueError, match="annotation id=7: 'keypoints' has 51 values"):
        aic_annotation_to_coco({**ann, "keypoints": [0] * 51})
