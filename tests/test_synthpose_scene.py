"""SynthPose scenes: owner-map visibility, annotations, crowd index, statistics, preview, baseline."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.data.synthpose import OCCLUDER_OWNER_BASE, crowd_index, dataset_statistics, render_sample
from aidpose.data.synthpose.baseline import mean_pose, mean_pose_results, place_pose
from aidpose.data.synthpose.body import KP
from aidpose.data.synthpose.dataset_statistics import area_band
from aidpose.data.synthpose.preview import LEFT_BGR, draw_annotations
from aidpose.data.synthpose.render import Silhouette
from aidpose.data.synthpose.scene import get_preset, in_image, person_annotation, visibility


def test_visibility_reads_the_owner_of_the_pixel_under_each_keypoint():
    owner = np.zeros((4, 5), np.int16)
    owner[1, 1] = 3  # the person
    owner[2, 3] = 4  # another person
    owner[0, 4] = OCCLUDER_OWNER_BASE
    kps = np.array([[1.2, 0.8], [2.6, 2.4], [3.9, 0.1], [5.2, 1.0], [1.0, -0.2], [4.0, 3.0]])
    # (1.2, 0.8) → pixel (1, 1) own; (2.6, 2.4) → (2, 3) other person; (3.9, 0.1) → (0, 4) occluder;
    # x = 5.2 > width - 1 and y = -0.2 < 0 are outside; (4, 3) → (3, 4) background
    np.testing.assert_array_equal(visibility(kps, owner, 3), [2, 1, 1, 0, 0, 1])


def test_in_image_uses_pixel_centre_range():
    kps = np.array([[0.0, 0.0], [9.0, 4.0], [9.01, 2.0], [-0.01, 2.0], [4.0, 4.01]])
    np.testing.assert_array_equal(in_image(kps, (10, 5)), [True, True, False, False, False])


def test_person_annotation_box_area_and_zeroed_outside_points():
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    kps = np.zeros((17, 2))
    kps[0] = [12.5, 21.25]
    kps[1] = [50.0, 50.0]
    vis = np.zeros(17, np.int64)
    vis[0], vis[1] = 2, 0
    ann = person_annotation(kps, vis, Silhouette(mask, (10, 20)))
    # silhouette pixels (x, y) = (11, 21), (12, 21); labelled keypoint (12.5, 21.25)
    assert ann["bbox"] == [11.0, 21.0, 2.0, 1.0]
    assert ann["area"] == 2.0 and ann["num_keypoints"] == 1
    assert ann["keypoints"][:6] == [12.5, 21.25, 2, 0.0, 0.0, 0]
    assert ann["iscrowd"] == 0 and ann["category_id"] == 1


def test_crowd_index_hand_values_and_clipping():
    kps = np.zeros((2, 3, 3))
    kps[0] = [[1, 1, 2], [2, 2, 2], [9, 9, 1]]  # person 0: 3 labelled joints
    kps[1] = [[2, 2, 2], [3, 3, 2], [30, 30, 0]]  # person 1: 2 labelled joints (third unlabelled)
    boxes = np.array([[0, 0, 10, 10], [2, 2, 1, 1]], float)
    # person 0's box holds both labelled joints of person 1 → 2/3; person 1's box [2,3]² holds (2,2) → 1/2
    assert crowd_index(kps, boxes) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # a box holding more foreign joints than own ones counts as 1
    kps[1, :, 2] = 2
    kps[1, 2, :2] = [5, 5]
    kps[0, :, 2] = [2, 0, 0]
    assert crowd_index(kps, boxes) == pytest.approx((1.0 + 0.0) / 2)
    assert crowd_index(np.zeros((1, 17, 3)), np.array([[0, 0, 5, 5]])) == 0.0


def test_area_bands_follow_coco():
    assert [area_band(a) for a in (32**2 - 1, 32**2, 96**2, 96**2 + 1)] == [
        "small",
        "medium",
        "medium",
        "large",
    ]


def test_dataset_statistics_hand_values():
    ann = lambda image_id, area, vs: {  # noqa: E731
        "image_id": image_id,
        "area": area,
        "bbox": [0, 0, 10, 10],
        "num_keypoints": sum(v > 0 for v in vs),
        "keypoints": [c for v in vs for c in (1, 1, v)],
    }
    coco = {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [ann(1, 500, [2, 1, 0, 2]), ann(1, 5000, [2, 2, 2, 1]), ann(2, 20000, [0, 0, 0, 0])],
    }
    stats = dataset_statistics(coco)
    assert stats["persons_per_image"] == 1.5 and stats["persons_per_image_hist"] == {"1": 1, "2": 1}
    assert stats["area_bands"] == {
        "small": 0.5,
        "medium": 0.5,
        "large": 0.0,
    }  # the unlabelled person is left out
    assert stats["keypoints_labelled"] == 7
    assert stats["share_hidden_v1"] == round(2 / 7, 4) and stats["share_outside_v0"] == round(5 / 12, 4)


@pytest.mark.parametrize("preset", ["default", "crowd"])
def test_owner_map_explains_every_visibility_flag(preset):
    for index in range(6):
        image, annotations, owner = render_sample(11, index, split="val", image_size=128, preset=preset)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8 and owner.shape == (128, 128)
        assert np.count_nonzero(owner) > 0
        for k, ann in enumerate(annotations):
            kps = np.asarray(ann["keypoints"], float).reshape(17, 3)
            for x, y, v in kps:
                if v == 0:
                    assert x == 0 and y == 0
                    continue
                assert 0 <= x <= 127 and 0 <= y <= 127
                pixel_owner = owner[round(y), round(x)]
                if v == 2:
                    assert pixel_owner == k + 1
                else:  # hidden: covered by an occluder or another person, never by background
                    assert pixel_owner not in (0, k + 1)


def test_hidden_share_of_labelled_keypoints_is_in_the_target_band():
    v = np.concatenate(
        [
            np.asarray(a["keypoints"]).reshape(17, 3)[:, 2]
            for i in range(40)
            for a in render_sample(0, i, split="val", image_size=128).annotations
        ]
    )
    share = np.count_nonzero(v == 1) / np.count_nonzero(v > 0)
    assert 0.12 < share < 0.35


def test_render_sample_rejects_unknown_preset_and_split():
    with pytest.raises(ValueError, match="preset"):
        render_sample(0, 0, preset="busy")
    with pytest.raises(ValueError, match="split"):
        render_sample(0, 0, split="test")
    assert get_preset("crowd").crowd_index and not get_preset("default").crowd_index


def test_preview_marks_hidden_and_visible_joints_differently():
    image = np.zeros((40, 40, 3), np.uint8)
    kps = np.zeros((17, 3))
    kps[KP["left_wrist"]] = [10, 10, 2]
    kps[KP["right_wrist"]] = [30, 30, 1]
    out = draw_annotations(image, [{"bbox": [0, 0, 39, 39], "keypoints": kps.reshape(-1).tolist()}])
    assert tuple(out[10, 10]) == LEFT_BGR  # filled dot
    assert tuple(out[30, 30]) == (0, 0, 0)  # ring: centre untouched
    assert out[30, 34].any()  # ... but its rim drawn


def test_mean_pose_baseline_hand_values():
    def ann(image_id, bbox, points):
        kps = np.zeros((17, 3))
        for k, (x, y, v) in points.items():
            kps[k] = [x, y, v]
        return {"image_id": image_id, "bbox": bbox, "keypoints": kps.reshape(-1).tolist(), "num_keypoints": 1}

    train = [ann(1, [0, 0, 10, 20], {0: (5, 5, 2)}), ann(1, [10, 0, 10, 10], {0: (12, 3, 1), 1: (20, 10, 2)})]
    pose = mean_pose(train)
    np.testing.assert_allclose(pose[0], [(0.5 + 0.2) / 2, (0.25 + 0.3) / 2])
    np.testing.assert_allclose(pose[1], [1.0, 1.0])
    np.testing.assert_allclose(pose[2], [0.5, 0.5])  # never labelled: box centre
    np.testing.assert_allclose(place_pose(pose[:2], [100, 50, 20, 40]), [[107, 61], [120, 90]])
    results = mean_pose_results(train, [ann(7, [100, 50, 20, 40], {0: (1, 1, 2)})])
    assert results[0]["image_id"] == 7 and results[0]["score"] == 1.0
    assert results[0]["keypoints"][:6] == [107.0, 61.0, 1.0, 120.0, 90.0, 1.0]
