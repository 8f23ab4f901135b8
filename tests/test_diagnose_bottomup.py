"""scripts/diagnose_bottomup.py: its oracle tags, left/right confusion and tag distances on hand-built maps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def diagnose(repo_root):
    return load_script(repo_root, "diagnose_bottomup")


def test_oracle_tags_name_the_nearest_person_per_joint(diagnose):
    keypoints = np.array([[[1.0, 1.0], [0.0, 0.0]], [[8.0, 1.0], [5.0, 5.0]]])  # 2 people, 2 joints
    visible = np.array([[2, 0], [2, 1]])
    tags = diagnose.oracle_tag_maps(keypoints, visible, (10, 4))
    assert tags.shape == (2, 4, 10, 1)
    step = diagnose.ORACLE_TAG_STEP
    assert tags[0, 0, 4, 0] == 0 and tags[0, 0, 5, 0] == step  # x = 4.5 is the midpoint of 1 and 8
    assert (tags[1] == step).all()  # joint 1: only person 1 is labelled


def test_left_right_heat_reads_the_joint_and_its_mirror_partner(diagnose):
    heat = np.zeros((3, 5, 5))
    heat[1, 2, 1] = 0.9  # channel 1 (left) peaks at the left joint (1, 2)
    heat[1, 2, 3] = 0.4  # and less at the right joint (3, 2)
    heat[2, 2, 1] = 0.7  # channel 2 (right) peaks at the wrong side
    keypoints = np.array([[[2.0, 0.0], [1.2, 1.8], [3.0, 2.0]]])
    visible = np.array([[2, 2, 1]])
    own, partner = diagnose.left_right_heat(heat, keypoints, visible, [0, 2, 1])
    np.testing.assert_allclose(own, [0.9, 0.0])
    np.testing.assert_allclose(partner, [0.4, 0.7])
    # partners closer than min_separation, or off the map, are not measured
    assert len(diagnose.left_right_heat(heat, keypoints, visible, [0, 2, 1], min_separation=3)[0]) == 0
    keypoints[0, 2] = [7.0, 2.0]
    assert len(diagnose.left_right_heat(heat, keypoints, visible, [0, 2, 1])[0]) == 0


def test_person_tag_distances_use_each_persons_mean_tag(diagnose):
    tags = np.zeros((2, 4, 4, 1))
    tags[0, 0, 0, 0], tags[1, 1, 1, 0] = 1.0, 3.0  # person 0: mean of 1 and 3 = 2
    tags[0, 3, 3, 0] = -1.0  # person 1: -1
    keypoints = np.array(
        [[[0.0, 0.0], [1.0, 1.0]], [[3.0, 3.0], [9.0, 9.0]]]
    )  # person 1's joint 1 off the map
    visible = np.array([[2, 2], [2, 2]])
    np.testing.assert_allclose(diagnose.person_tag_distances(tags, keypoints, visible), [3.0])
    assert len(diagnose.person_tag_distances(tags, keypoints[:1], visible[:1])) == 0
