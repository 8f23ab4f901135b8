"""SynthPose geometry: kinematics, joint limits, facing and in-plane rotation, rasterisation helpers."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.data.synthpose.body import (
    KP,
    LABEL,
    LIMITS,
    Part,
    Placement,
    clip_pose,
    hinge_bend,
    limb_direction,
    person_geometry,
    rotate_about,
    sample_pose,
    sample_shape,
    skeleton_3d,
)
from aidpose.data.synthpose.render import draw_part, parts_extent


def _standing() -> dict:
    return {
        "arm_abduction": (10.0, 10.0),
        "arm_flexion": (0.0, 0.0),
        "arm_rotation": (0.0, 0.0),
        "elbow": (0.0, 0.0),
        "leg_abduction": (0.0, 0.0),
        "leg_flexion": (0.0, 0.0),
        "leg_rotation": (0.0, 0.0),
        "knee": (0.0, 0.0),
        "torso_bend": 0.0,
        "torso_roll": 0.0,
        "torso_twist": 0.0,
        "head_yaw": 0.0,
        "head_pitch": 0.0,
        "head_roll": 0.0,
    }


def test_limb_direction_hand_values():
    np.testing.assert_allclose(limb_direction(0, 0, 1), [0, 1, 0], atol=1e-12)  # hanging down
    np.testing.assert_allclose(limb_direction(90, 0, 1), [1, 0, 0], atol=1e-12)  # left arm out to the left
    np.testing.assert_allclose(limb_direction(90, 0, -1), [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(limb_direction(0, 90, -1), [0, 0, 1], atol=1e-12)  # swung forward


def test_hinges_bend_elbows_forward_and_knees_backward():
    down = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(hinge_bend(down, 0.0, 90.0), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(hinge_bend(down, 0.0, -90.0), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(
        rotate_about(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), 90.0), [0, 1, 0], atol=1e-12
    )


def test_clip_pose_respects_limits():
    values = _standing()
    values["elbow"] = (-30.0, 500.0)
    values["torso_bend"] = 99.0
    pose = clip_pose(values)
    assert pose.elbow == (LIMITS["elbow"][0], LIMITS["elbow"][1])
    assert pose.torso_bend == LIMITS["torso_bend"][1]


def test_sampled_poses_stay_within_limits_and_bones_keep_their_length():
    rng = np.random.default_rng(0)
    for _ in range(200):
        shape, pose = sample_shape(rng), sample_pose(rng)
        for name, (lo, hi) in LIMITS.items():
            values = np.atleast_1d(getattr(pose, name))
            assert np.all((values >= lo) & (values <= hi)), name
        p, _, _ = skeleton_3d(shape, pose)
        for side in ("left", "right"):
            assert np.linalg.norm(p[f"{side}_elbow"] - p[f"{side}_shoulder"]) == pytest.approx(
                shape.upper_arm
            )
            assert np.linalg.norm(p[f"{side}_wrist"] - p[f"{side}_elbow"]) == pytest.approx(shape.forearm)
            assert np.linalg.norm(p[f"{side}_knee"] - p[f"{side}_hip"]) == pytest.approx(shape.thigh)
            assert np.linalg.norm(p[f"{side}_ankle"] - p[f"{side}_knee"]) == pytest.approx(shape.shank)


@pytest.mark.parametrize(
    ("yaw", "left_on_image_right"), [(0.0, True), (180.0, False), (30.0, True), (-150.0, False)]
)
def test_facing_decides_which_side_is_on_the_image_right(yaw, left_on_image_right):
    shape = sample_shape(np.random.default_rng(1))
    geo = person_geometry(shape, clip_pose(_standing()), Placement(100.0, 100.0, 150.0, yaw, 0.0))
    for left, right in (
        ("left_shoulder", "right_shoulder"),
        ("left_hip", "right_hip"),
        ("left_eye", "right_eye"),
    ):
        assert (geo.keypoints[KP[left], 0] > geo.keypoints[KP[right], 0]) == left_on_image_right


def test_face_is_drawn_only_towards_the_camera():
    shape = sample_shape(np.random.default_rng(2))
    pose = clip_pose(_standing())
    labels = {
        yaw: {p.label for p in person_geometry(shape, pose, Placement(0, 0, 100, yaw, 0)).parts}
        for yaw in (0, 180)
    }
    assert {LABEL["face"], LABEL["eye"], LABEL["placket"]} <= labels[0]
    assert not {LABEL["face"], LABEL["eye"], LABEL["placket"]} & labels[180]


def test_in_plane_rotation_rotates_keypoints_about_the_pelvis():
    rng = np.random.default_rng(3)
    shape, pose = sample_shape(rng), sample_pose(rng)
    upright = person_geometry(shape, pose, Placement(50.0, 60.0, 120.0, 20.0, 0.0)).keypoints
    turned = person_geometry(shape, pose, Placement(50.0, 60.0, 120.0, 20.0, 90.0)).keypoints
    # image y points down, so +90° maps the offset (dx, dy) to (-dy, dx)
    d = upright - [50.0, 60.0]
    np.testing.assert_allclose(turned - [50.0, 60.0], np.stack([-d[:, 1], d[:, 0]], axis=1), atol=1e-9)


def test_scale_and_height():
    shape = sample_shape(np.random.default_rng(4))
    geo = person_geometry(shape, clip_pose(_standing()), Placement(0.0, 0.0, 200.0, 0.0, 0.0))
    ankle_y = geo.keypoints[KP["left_ankle"], 1]
    assert ankle_y == pytest.approx(200.0 * (shape.thigh + shape.shank), rel=1e-9)


def test_capsule_covers_the_pixels_under_its_end_points():
    canvas = np.zeros((20, 20), np.uint8)
    part = Part(7, 0.0, "capsule", np.array([3.4, 4.6, 15.5, 12.2, 1.0, 1.0]))
    draw_part(canvas, part, (0, 0))
    assert canvas[5, 3] == 7 and canvas[12, 16] == 7
    assert canvas[18, 2] == 0


def test_parts_extent_hand_values():
    parts = [
        Part(1, 0.0, "capsule", np.array([10.0, 10.0, 20.0, 12.0, 2.0, 3.0])),
        Part(1, 0.0, "circle", np.array([0.0, 5.0, 1.0])),
        Part(1, 0.0, "polygon", np.array([[4.0, 30.0], [6.0, 31.0], [5.0, 29.0]])),
    ]
    assert parts_extent(parts) == (-1.0, 4.0, 23.0, 31.0)
